#!/bin/bash
# Reserve throughput on one hot drop: gunicorn (sync workers, DEBUG off) + wrk.
#   bench/reserve.sh [runs=3] [seconds=8] [connections=32] [workers=4]
# Needs wrk (Debian package) and PostgreSQL/Redis from DATABASE_URL/REDIS_URL; it
# creates and drops its own database "bench_reserve" on that server.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3} SECONDS_PER_RUN=${2:-8} CONNECTIONS=${3:-32} WORKERS=${4:-4}
BASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export DATABASE_URL="${BASE_URL%/*}/bench_reserve"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DEBUG=0 SECRET_KEY=bench-only-$RANDOM$RANDOM$RANDOM SECURE_SSL_REDIRECT=0 LOG_LEVEL=ERROR
PY=.venv/bin/python
psql "${BASE_URL}" -qc "DROP DATABASE IF EXISTS bench_reserve WITH (FORCE)" -c "CREATE DATABASE bench_reserve"
$PY manage.py migrate -v0
.venv/bin/gunicorn inventory_project.wsgi --bind 127.0.0.1:8010 --workers "$WORKERS" \
    --log-level error > var/bench-gunicorn.log 2>&1 &
GUNICORN=$!
trap 'kill $GUNICORN; wait $GUNICORN 2>/dev/null || true' EXIT
sleep 2
for run in $(seq "$RUNS"); do
    $PY bench/seed_reserve.py --buyers 40000 --out "var/bench/run-$run" > /dev/null
    echo -n "run $run: "
    wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s bench/reserve.lua http://127.0.0.1:8010 \
        -- "var/bench/run-$run" | tail -1
done
DATABASE_URL="$DATABASE_URL" $PY manage.py check_stock | tail -1
