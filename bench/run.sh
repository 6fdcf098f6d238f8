#!/usr/bin/env bash
# Measures partner-center against the limits of its own machine, in one run, and reports ratios.
#
#   bench/run.sh               full run: release build, PostgreSQL and SQLite, medians of 3 runs
#   BENCH_QUICK=1 bench/run.sh a few seconds on small data, to prove it works (CI)
#
# Needs: a PostgreSQL server (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres,
# where it creates and drops databases named pc_bench_*) and pgbench (Debian: postgresql-client).
# Results: bench/results/ (JSON per measurement, summary.json) and bench/throughput.svg.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${BENCH_QUICK:-0}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
PORT=${BENCH_PORT:-50070}
# The service's pool size, so pgbench runs as many backends as the service can use at once.
POOL=${BENCH_POOL:-32}
export AUTH_JWT_SECRET=bench-secret-bench-secret-bench-secret
if [ "$QUICK" = 1 ]; then
    PROFILE=debug; DURATION=1; WARMUP=0.3; RUNS=1; SMALL=600; LARGE=2000; SWEEP="4 16"
    cargo build -q -p partner-center -p pc-bench
else
    PROFILE=release; DURATION=${BENCH_DURATION:-10}; WARMUP=2; RUNS=3; SMALL=10000; LARGE=1000000; SWEEP="1 4 16 64"
    cargo build -q --release -p partner-center -p pc-bench
fi
BIN=target/$PROFILE
OUT=bench/results
rm -rf "$OUT" && mkdir -p "$OUT"
SERVER_PID=""

cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

pg_admin() { psql "$PG_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
db_url() { echo "${PG_URL%/*}/$1"; }

# Starts the dev server over DATABASE_URL=$1 and waits until it serves.
start_server() {
    DATABASE_URL=$1 LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn DB_MAX_CONNECTIONS=$POOL \
        "$BIN/partner-center" serve > "$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        "$BIN/partner-center" health --addr 127.0.0.1:$PORT >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not start:"; cat "$OUT/server.log"; exit 1
}

stop_server() {
    # Peak resident memory of the service under the load it just served.
    grep VmHWM "/proc/$SERVER_PID/status" | awk '{print $2}' > "$OUT/$1.rss_kib" || true
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

# bench NAME SCENARIO CONCURRENCY [extra pc-bench args]: the median throughput of $RUNS runs.
bench() {
    local name=$1 scenario=$2 conc=$3; shift 3
    for run in $(seq 1 "$RUNS"); do
        "$BIN/pc-bench" run --target "http://127.0.0.1:$PORT" --scenario "$scenario" --concurrency "$conc" \
            --duration "$DURATION" --warmup "$WARMUP" --json "$OUT/$name.$run.json" "$@" | sed "s/^/  /"
    done
    python3 - "$OUT" "$name" "$RUNS" <<'PY'
import json, statistics, sys
out, name, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
reports = [json.load(open(f"{out}/{name}.{i}.json")) for i in range(1, runs + 1)]
median = {k: statistics.median(r[k] for r in reports) for k in ("throughput", "p50_ms", "p90_ms", "p99_ms", "max_ms")}
json.dump(median, open(f"{out}/{name}.json", "w"))
PY
}

# pgbench NAME SCRIPT: transactions per second of the service's own SQL at the concurrency the
# database sees from the service: one client per pooled connection (64 pgbench clients would be 64
# backends on 2 cores, a load the service never puts on the database).
pgbench_tps() {
    local name=$1 url=$2 script=$3 clients=$(( CONCURRENCY < POOL ? CONCURRENCY : POOL ))
    local threads=$(( clients < 2 ? clients : 2 ))
    # Prepared statements, as sqlx uses; -n: the schema is the service's, not pgbench's.
    if ! pgbench -n -M prepared -c "$clients" -j "$threads" -T "$DURATION" -f "$script" -D id="$4" "$url" \
        > "$OUT/$name.pgbench" 2>&1; then
        echo "pgbench $name failed:"; cat "$OUT/$name.pgbench"; exit 1
    fi
    awk '/^tps/ {print $3; exit}' "$OUT/$name.pgbench" > "$OUT/$name.tps"
    echo "  pgbench $name: $(cat "$OUT/$name.tps") tps"
}

echo "== PostgreSQL"
# The SQL GetPartner runs, and the SQL CreatePartner runs (tenant lock, rule 1 check, insert, audit), as in
# the service; the tenant is a constant per transaction, as the service binds it (a volatile
# gen_random_uuid() in the WHERE clause would defeat the index and measure a scan instead).
cat > "$OUT/read.sql" <<'SQL'
SELECT id, display_name, tenant_id, country_code, cloud, program_role, state, revision, create_time, update_time
  FROM partners WHERE id = (:id)::uuid LIMIT 1;
SQL
cat > "$OUT/write.sql" <<'SQL'
\set t random(1, 1000000000000)
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('tenant-GLOBAL-' || md5((:t)::text)::uuid, 0));
SELECT count(*) FROM customer_relationships WHERE state = 'ACTIVE'
  AND customer_id IN (SELECT id FROM customers WHERE cloud = 'GLOBAL' AND tenant_id = md5((:t)::text)::uuid);
INSERT INTO partners (id, display_name, tenant_id, country_code, cloud, program_role, state, revision, create_time, update_time)
  VALUES (gen_random_uuid(), 'Bench Partner', md5((:t)::text)::uuid, 'US', 'GLOBAL', 'DIRECT_BILL_PARTNER', 'ACTIVE', 1, now(), now());
INSERT INTO audit_events (id, resource, action, principal, change, create_time)
  VALUES (gen_random_uuid(), 'partners/x', 'CreatePartner', 'operator', '{}', now());
COMMIT;
SQL
DB=pc_bench_$$
pg_admin "CREATE DATABASE $DB"
trap 'cleanup; pg_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
start_server "$(db_url $DB)"
bench pg-health health "$CONCURRENCY"
bench pg-get-partner get-partner "$CONCURRENCY"
# Each database limit is measured right after the service's own figure, on the database in the
# same state: run after the write-heavy scenarios, pgbench read at little more than half the rate.
PARTNER_ID=$(psql "$(db_url $DB)" -qAtX -c "SELECT id FROM partners LIMIT 1")
pgbench_tps pg-read "$(db_url $DB)" "$OUT/read.sql" "$PARTNER_ID"
bench pg-create-partner create-partner "$CONCURRENCY"
pgbench_tps pg-write "$(db_url $DB)" "$OUT/write.sql" "$PARTNER_ID"
bench pg-two-tier two-tier-flow "$(( CONCURRENCY / 4 ))"
for conc in $SWEEP; do
    bench "sweep-health-$conc" health "$conc"
    bench "sweep-get-partner-$conc" get-partner "$conc"
done
stop_server pg
pg_admin "DROP DATABASE $DB WITH (FORCE)"

# A partner's page of 50 subscriptions over a small and a large table, each in a fresh database.
for rows in $SMALL $LARGE; do
    pg_admin "CREATE DATABASE ${DB}_$rows"
    start_server "$(db_url ${DB}_$rows)"
    bench "pg-list-$rows" list-subscriptions "$CONCURRENCY" --rows "$rows" --database-url "$(db_url ${DB}_$rows)"
    stop_server "pg-list-$rows"
    pg_admin "DROP DATABASE ${DB}_$rows WITH (FORCE)"
done

echo "== SQLite (the embedded default)"
SQLITE=$(mktemp -d)/bench.db
start_server "sqlite://$SQLITE?mode=rwc"
bench sqlite-health health "$CONCURRENCY"
bench sqlite-get-partner get-partner "$CONCURRENCY"
stop_server sqlite
rm -rf "$(dirname "$SQLITE")"

"$BIN/pc-bench" report --results "$OUT" --sweep "$SWEEP" --chart bench/throughput.svg
