"""The ASGI entry point for uvicorn/gunicorn: ``uvicorn api.asgi:app``.

Each worker process logs JSON lines to stderr and, with ``PROMETHEUS_MULTIPROC_DIR`` set,
drops its live gauges when it exits.
"""

import atexit

from api.main import create_app
from api.observability import logs, metrics
from api.settings import get_settings

logs.configure(get_settings().log_level)
atexit.register(metrics.worker_exited)
app = create_app()
