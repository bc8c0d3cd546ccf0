#!/bin/sh
# Start PostgreSQL as the postgres user: initdb on first start (primary), or clone the
# primary with pg_basebackup -R (replica, when PRIMARY_HOST is set).
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" && chown -R postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
  exec runuser -u postgres -- "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${PRIMARY_HOST:-}" ]; then
    until "$BIN/pg_basebackup" -h "$PRIMARY_HOST" -p "${PRIMARY_PORT:-5432}" -U postgres \
        -D "$PGDATA" -R -X stream; do
      echo "waiting for the primary at $PRIMARY_HOST:${PRIMARY_PORT:-5432}"; sleep 1
    done
  else
    "$BIN/initdb" -D "$PGDATA" -U postgres -A "${POSTGRES_AUTH:-trust}" -E UTF8
    cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '${LISTEN_ADDRESSES:-*}'
wal_level = replica
max_wal_senders = 10
hot_standby = on
CONF
    # The compose demo trusts its own network; set POSTGRES_AUTH=scram-sha-256 (and a
    # password) anywhere else.
    echo "host all all ${TRUSTED_NETWORK:-127.0.0.1/32} ${POSTGRES_AUTH:-trust}" >> "$PGDATA/pg_hba.conf"
    echo "host replication all ${TRUSTED_NETWORK:-127.0.0.1/32} ${POSTGRES_AUTH:-trust}" >> "$PGDATA/pg_hba.conf"
  fi
fi
exec "$BIN/postgres" -D "$PGDATA" -p "$PGPORT" -k /tmp
