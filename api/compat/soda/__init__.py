"""Socrata SODA 2.1: ``/resource/{dataset}.json|.csv`` and ``/api/views/{dataset}.json``."""
