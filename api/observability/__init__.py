"""Structured request logs, request ids and Prometheus metrics (all pure ASGI, all cheap)."""
