"""Storage layer: tables, engine and session. Never imports ``api``."""
