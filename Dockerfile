# Slim production image: runs migrations, then uvicorn with the settings from the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////app/data/cityscore.db \
    WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/cityscore-metrics

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY db ./db
COPY alembic ./alembic
RUN pip install . \
    && useradd --system --home-dir /app cityscore \
    && mkdir -p /app/data && chown cityscore /app/data

USER cityscore
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "cityscore db upgrade && rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && exec uvicorn api.asgi:app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY} --no-access-log --proxy-headers --forwarded-allow-ips='*'"]
