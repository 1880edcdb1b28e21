#!/bin/sh
# The official postgres image's start-up, the part Mediary's Compose file relies on: as root, own
# PGDATA and drop to the postgres user; on an empty PGDATA, initdb with POSTGRES_USER as the
# superuser and POSTGRES_PASSWORD as its password (scram-sha-256 over TCP), then create POSTGRES_DB;
# then run the command (`postgres …`, listening on every address and on PGPORT, default 5432).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
# `docker run IMAGE -c x=y` means `postgres -c x=y`.
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups /bin/sh "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set for an empty data directory}"
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  # Only the Unix socket while the database is made: no client sees a half-made cluster.
  pg_ctl --wait --silent --options="-c listen_addresses=''" start
  if [ "$db" != postgres ]; then
    echo 'CREATE DATABASE :"db";' | psql --quiet -v ON_ERROR_STOP=1 -v db="$db" --username="$user" --dbname=postgres
  fi
  pg_ctl --wait --silent --mode=fast stop
  echo "postgres-entrypoint: initialised $PGDATA (superuser $user, database $db)"
fi
exec "$@"
