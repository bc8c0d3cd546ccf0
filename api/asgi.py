"""The ASGI entry point for uvicorn/gunicorn: ``uvicorn api.asgi:app``.

Each worker process logs JSON lines to stderr and, with ``PROMETHEUS_MULTIPROC_DIR`` set,
drops its live gauges when it exits. Once the app is built, its routes are worked out ahead
of the first request (``warm_routes``: FastAPI otherwise does it lazily, on each router's
first request, ~80 ms on the first scorecards page); then everything allocated so far is
frozen out of the cyclic garbage collector (``gc.freeze``): a full collection during a
request walks only objects made since start-up, not every module, model and route (a full
collection over those took ~50 ms, the p99 of a 10-year history request).
"""

import atexit
import gc

from api.http.warmup import warm_routes
from api.main import create_app
from api.observability import logs, metrics
from api.settings import get_settings

logs.configure(get_settings().log_level)
atexit.register(metrics.worker_exited)
app = create_app()
warm_routes(app)
gc.freeze()
