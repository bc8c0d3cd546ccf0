# Slim production image: the built wheel installed into site-packages (no source tree at run
# time); at start it runs the migrations (safe with several replicas), then serves.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
# db/migrations is a symlink to alembic/: both are needed to package the migrations.
COPY db ./db
COPY alembic ./alembic
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/cityscore.db \
    WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/cityscore-metrics
COPY --from=build /dist/ /tmp/dist/
RUN pip install /tmp/dist/*.whl \
    && rm -rf /tmp/dist \
    && useradd --system --home-dir /data cityscore \
    && mkdir -p /data && chown cityscore /data
WORKDIR /data
USER cityscore
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# `cityscore serve` logs the database, warns when WEB_CONCURRENCY x (DB_POOL_SIZE +
# DB_MAX_OVERFLOW) exceeds PostgreSQL's max_connections, and trusts X-Forwarded-* from
# FORWARDED_ALLOW_IPS.
CMD ["sh", "-c", "cityscore db upgrade && exec cityscore serve --host 0.0.0.0 --port ${PORT:-8000} --workers ${WEB_CONCURRENCY}"]
