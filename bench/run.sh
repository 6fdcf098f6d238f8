#!/usr/bin/env bash
# Measures partner-center against the limits of its own machine, in one run, and reports ratios.
#
#   bench/run.sh               full run: release build, PostgreSQL and SQLite, medians of 3 runs
#   BENCH_QUICK=1 bench/run.sh a few seconds on small data, to prove it works (CI)
#
# Needs: a PostgreSQL server (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres,
# where it creates and drops databases named pc_bench_*), pgbench (Debian: postgresql-client) and
# NATS with JetStream (BENCH_NATS_URL, default nats://127.0.0.1:4222).
# Results: bench/results/ (JSON per measurement, summary.json) and bench/throughput.svg.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${BENCH_QUICK:-0}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# NATS with JetStream, for the relay's figures (a stream pcbench_* is made and deleted).
NATS_URL=${BENCH_NATS_URL:-nats://127.0.0.1:4222}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
# Below Linux's ephemeral range (32768-60999): a port in it may already be the local end of one of
# the benchmark's own connections by the time a second server binds it.
PORT=${BENCH_PORT:-28070}
# The service's pool size, so pgbench runs as many backends as the service can use at once.
POOL=${BENCH_POOL:-32}
export AUTH_JWT_SECRET=bench-secret-bench-secret-bench-secret
if [ "$QUICK" = 1 ]; then
    PROFILE=debug; DURATION=1; WARMUP=0.3; RUNS=1; SMALL=600; LARGE=2000; SWEEP="4 16"
    # A small burst past a small limit: proves shedding works, measures nothing.
    BURSTS="400"; BURST_LIMIT=32; BURST_BASE=16
    EVENTS_RATE=200; EVENTS_IDLE=10; EVENTS_IDLE_SECS=1; EVENTS_BACKLOG=1000
    cargo build -q -p partner-center -p pc-bench
else
    PROFILE=release; DURATION=${BENCH_DURATION:-10}; WARMUP=2; RUNS=3; SMALL=10000; LARGE=1000000; SWEEP="1 4 16 64"
    BURSTS=${BENCH_BURSTS:-"10000 50000"}; BURST_LIMIT=0; BURST_BASE=$CONCURRENCY
    EVENTS_RATE=1000; EVENTS_IDLE=100; EVENTS_IDLE_SECS=30; EVENTS_BACKLOG=50000
    cargo build -q --release -p partner-center -p pc-bench
fi
BIN=target/$PROFILE
OUT=bench/results
rm -rf "$OUT" && mkdir -p "$OUT"
SERVER_PID=""
SERVERS=""

cleanup() { for pid in $SERVERS; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

pg_admin() { psql "$PG_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
db_url() { echo "${PG_URL%/*}/$1"; }

# Starts the dev server over DATABASE_URL=$1 on port $2 (default $PORT), sets SERVER_PID and
# waits until it serves.
start_server() {
    local port=${2:-$PORT}
    # shellcheck disable=SC2086 # SERVER_WRAP is a command and its arguments
    env DATABASE_URL="$1" LISTEN_ADDR=127.0.0.1:$port RUST_LOG=warn DB_MAX_CONNECTIONS=$POOL \
        MAX_IN_FLIGHT="${MAX_IN_FLIGHT:-0}" ${HEALTH_LISTEN_ADDR:+HEALTH_LISTEN_ADDR=$HEALTH_LISTEN_ADDR} \
        ${SERVER_WRAP:-} "$BIN/partner-center" serve > "$OUT/server-$port.log" 2>&1 &
    SERVER_PID=$!
    SERVERS="$SERVERS $SERVER_PID"
    for _ in $(seq 1 100); do
        "$BIN/partner-center" health --addr 127.0.0.1:$port >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not start:"; cat "$OUT/server-$port.log"; exit 1
}

# stop_server NAME [PID]: records the peak resident memory of the service under the load it just
# served, and stops it.
stop_server() {
    local pid=${2:-$SERVER_PID}
    grep VmHWM "/proc/$pid/status" | awk '{print $2}' > "$OUT/$1.rss_kib" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

# bench NAME RUN SCENARIO CONCURRENCY [extra pc-bench args]: one run, into $OUT/NAME.RUN.json.
# Runs are interleaved: every figure and the limit it is compared with are measured in the same
# round, so the machine drifting (a shared host's speed moved by a third within one run) shifts
# both alike instead of one of them.
bench() {
    local name=$1 run=$2 scenario=$3 conc=$4 port=$PORT; shift 4
    if [ "${1:-}" = --port ]; then port=$2; shift 2; fi
    "$BIN/pc-bench" run --target "http://127.0.0.1:$port" --scenario "$scenario" --concurrency "$conc" \
        --duration "$DURATION" --warmup "$WARMUP" --json "$OUT/$name.$run.json" "$@" | sed "s/^/  /"
}

# median NAME...: the median of each NAME's runs, into $OUT/NAME.json (pc-bench reports) or
# $OUT/NAME.tps (pgbench).
median() {
    python3 - "$OUT" "$RUNS" "$@" <<'PY'
import json, os, statistics, sys
out, runs, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for name in names:
    if os.path.exists(f"{out}/{name}.1.tps"):
        tps = [float(open(f"{out}/{name}.{i}.tps").read()) for i in range(1, runs + 1)]
        open(f"{out}/{name}.tps", "w").write(f"{statistics.median(tps)}\n")
        continue
    reports = [json.load(open(f"{out}/{name}.{i}.json")) for i in range(1, runs + 1)]
    keys = ("throughput", "p50_ms", "p90_ms", "p99_ms", "max_ms")
    json.dump({k: statistics.median(r[k] for r in reports) for k in keys}, open(f"{out}/{name}.json", "w"))
PY
}

# pgbench_tps NAME RUN URL SCRIPT ID: transactions per second of the service's own SQL at the
# concurrency the database sees from the service: one client per pooled connection (64 pgbench
# clients would be 64 backends on 2 cores, a load the service never puts on the database).
pgbench_tps() {
    local name=$1 run=$2 url=$3 script=$4 clients=$(( CONCURRENCY < POOL ? CONCURRENCY : POOL ))
    local threads=$(( clients < 2 ? clients : 2 ))
    # Prepared statements, as sqlx uses; -n: the schema is the service's, not pgbench's.
    if ! pgbench -n -M prepared -c "$clients" -j "$threads" -T "$DURATION" -f "$script" -D id="$5" "$url" \
        > "$OUT/$name.$run.pgbench" 2>&1; then
        echo "pgbench $name failed:"; cat "$OUT/$name.$run.pgbench"; exit 1
    fi
    awk '/^tps/ {print $3; exit}' "$OUT/$name.$run.pgbench" > "$OUT/$name.$run.tps"
    echo "  pgbench $name: $(cat "$OUT/$name.$run.tps") tps"
}

echo "== PostgreSQL"
# The SQL GetPartner runs, and the SQL CreatePartner runs (tenant lock, rule 1 check, insert, audit
# row with its feed position and the resource, of the sizes the service writes: 314 and 329 bytes),
# as in the service; the tenant is a constant per transaction, as the service binds it (a volatile
# gen_random_uuid() in the WHERE clause would defeat the index and measure a scan instead).
cat > "$OUT/read.sql" <<'SQL'
SELECT id, display_name, tenant_id, country_code, cloud, program_role, state, revision, create_time, update_time
  FROM partners WHERE id = (:id)::uuid LIMIT 1;
SQL
cat > "$OUT/write.sql" <<'SQL'
\set t random(1, 1000000000000)
BEGIN;
INSERT INTO tenants (cloud, tenant_id) VALUES ('GLOBAL', md5((:t)::text)::uuid)
  ON CONFLICT (cloud, tenant_id) DO UPDATE SET cloud = excluded.cloud;
SELECT count(*) FROM customer_relationships WHERE state = 'ACTIVE'
  AND customer_id IN (SELECT id FROM customers WHERE cloud = 'GLOBAL' AND tenant_id = md5((:t)::text)::uuid);
INSERT INTO partners (id, display_name, tenant_id, country_code, cloud, program_role, state, revision, create_time, update_time)
  VALUES (gen_random_uuid(), 'Bench Partner', md5((:t)::text)::uuid, 'US', 'GLOBAL', 'DIRECT_BILL_PARTNER', 'ACTIVE', 1, now(), now());
INSERT INTO audit_events (id, resource, action, principal, change, schema, create_time, transaction_id, resource_after)
  VALUES (gen_random_uuid(), 'partners/x', 'CreatePartner', 'operator', repeat('c', 314), 2, now(),
          pg_current_xact_id()::text::bigint, repeat('r', 329));
COMMIT;
SQL
# The SQL of a 10-subscription transfer (CreateTransfer, then AcceptTransfer), statement for
# statement as the service runs it for a direct-bill target (read off PostgreSQL's statement log),
# on the batches pc-bench seeded: client c moves batch c between the two partners, as worker c of
# pc-bench does. The one statement the service does not run is the first, which reads the batch's
# ids and current holder (bench_batches, made after seeding). Audit rows carry a change and a
# resource of about the service's size.
transfer_sql() {
    local ids="" s
    for i in 0 1 2 3 4 5 6 7 8 9; do ids="$ids${ids:+, }(:s$i)::uuid"; done
    # pgbench reads :name as a variable even inside a literal, so no JSON text here: text of the
    # size the service writes (a change of ~400 bytes, a resource of ~600).
    local change="repeat('c', 400)" after="repeat('r', 600)"
    cat <<SQL
SELECT b.customer_id AS cust, s.partner_of_record_id AS src,
       CASE WHEN s.partner_of_record_id = b.first_id THEN b.second_id ELSE b.first_id END AS tgt,
       b.ids[1] AS s0, b.ids[2] AS s1, b.ids[3] AS s2, b.ids[4] AS s3, b.ids[5] AS s4,
       b.ids[6] AS s5, b.ids[7] AS s6, b.ids[8] AS s7, b.ids[9] AS s8, b.ids[10] AS s9
  FROM bench_batches b JOIN subscriptions s ON s.id = b.ids[1]::uuid WHERE b.worker = (:client_id)::int \gset
BEGIN;
SELECT * FROM customers WHERE id = (:cust)::uuid LIMIT 1;
SELECT * FROM customer_relationships WHERE customer_id = (:cust)::uuid AND state = 'ACTIVE';
SELECT * FROM customer_relationships WHERE partner_id = (:tgt)::uuid AND customer_id = (:cust)::uuid AND state IN ('PENDING', 'ACTIVE') LIMIT 1;
SELECT * FROM partners WHERE id IN ((:tgt)::uuid) ORDER BY id FOR SHARE;
SELECT * FROM partners WHERE id = (:src)::uuid LIMIT 1;
SELECT * FROM customer_relationships WHERE partner_id = (:tgt)::uuid AND customer_id = (:cust)::uuid AND state = 'ACTIVE' LIMIT 1 FOR SHARE;
SELECT * FROM subscriptions WHERE id IN ($ids) ORDER BY id FOR UPDATE;
SELECT * FROM transfers WHERE customer_id = (:cust)::uuid AND state = 'PENDING' AND expire_time > now();
INSERT INTO transfers (id, customer_id, source_partner_id, target_partner_id, indirect_provider_id, subscription_ids, state, accept_time, end_time, expire_time, revision, create_time, update_time)
  VALUES (gen_random_uuid(), (:cust)::uuid, (:src)::uuid, (:tgt)::uuid, NULL, concat_ws(' ', (:s0)::text, (:s1)::text, (:s2)::text, (:s3)::text, (:s4)::text, (:s5)::text, (:s6)::text, (:s7)::text, (:s8)::text, (:s9)::text), 'PENDING', NULL, NULL, now() + interval '30 days', 1, now(), now())
  RETURNING id AS tr \gset
INSERT INTO audit_events (id, resource, action, principal, change, schema, create_time, transaction_id, resource_after)
  VALUES (gen_random_uuid(), 'transfers/' || (:tr)::text, 'CreateTransfer', 'partners/x', $change, 2, now(), pg_current_xact_id()::text::bigint, $after);
COMMIT;
BEGIN;
SELECT * FROM transfers WHERE id = (:tr)::uuid LIMIT 1;
SELECT * FROM customers WHERE id = (:cust)::uuid LIMIT 1;
SELECT * FROM customer_relationships WHERE partner_id = (:tgt)::uuid AND customer_id = (:cust)::uuid AND state IN ('PENDING', 'ACTIVE') LIMIT 1;
SELECT * FROM partners WHERE id IN ((:src)::uuid, (:tgt)::uuid) ORDER BY id FOR SHARE;
SELECT * FROM customer_relationships WHERE partner_id = (:tgt)::uuid AND customer_id = (:cust)::uuid AND state = 'ACTIVE' LIMIT 1 FOR SHARE;
SELECT * FROM transfers WHERE id = (:tr)::uuid LIMIT 1 FOR UPDATE;
SELECT * FROM subscriptions WHERE id IN ($ids) ORDER BY id FOR UPDATE;
UPDATE transfers SET state = 'ACCEPTED', accept_time = now(), revision = 2, update_time = now() WHERE id = (:tr)::uuid AND revision = 1;
INSERT INTO audit_events (id, resource, action, principal, change, schema, create_time, transaction_id, resource_after)
  VALUES (gen_random_uuid(), 'transfers/' || (:tr)::text, 'AcceptTransfer', 'partners/x', $change, 2, now(), pg_current_xact_id()::text::bigint, $after);
SELECT * FROM subscriptions WHERE id IN ($ids) ORDER BY id FOR UPDATE;
SQL
    for i in 0 1 2 3 4 5 6 7 8 9; do
        cat <<SQL
SELECT * FROM support_assignments WHERE subscription_id = (:s$i)::uuid AND state IN ('REQUESTED', 'ACTIVE') ORDER BY id;
UPDATE subscriptions SET partner_of_record_id = (:tgt)::uuid, billing_partner_id = (:tgt)::uuid, revision = revision + 1, update_time = now() WHERE id = (:s$i)::uuid;
INSERT INTO audit_events (id, resource, action, principal, change, schema, create_time, transaction_id, resource_after)
  VALUES (gen_random_uuid(), 'subscriptions/' || (:s$i)::text, 'TransferSubscription', 'partners/x', $change, 2, now(), pg_current_xact_id()::text::bigint, $after);
SQL
    done
    echo "COMMIT;"
}
transfer_sql > "$OUT/transfer.sql"
# bench_batches: worker k's ten subscriptions (offer-k-0 .. offer-k-9) and the two partners.
BATCHES_SQL="CREATE TABLE bench_batches AS
  SELECT split_part(offer_id, '-', 2)::int AS worker, customer_id,
         array_agg(id::text ORDER BY split_part(offer_id, '-', 3)::int) AS ids,
         (SELECT min(partner_id::text) FROM customer_relationships r WHERE r.customer_id = s.customer_id)::uuid AS first_id,
         (SELECT max(partner_id::text) FROM customer_relationships r WHERE r.customer_id = s.customer_id)::uuid AS second_id
    FROM subscriptions s WHERE offer_id LIKE 'offer-%-%' GROUP BY 1, 2;
  CREATE UNIQUE INDEX ON bench_batches (worker)"
DB=pc_bench_$$
drop_databases() { for db in $DB ${DB}_$SMALL ${DB}_$LARGE ${DB}_burst ${DB}_events ${DB}_transfer; do pg_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done; }
trap 'cleanup; drop_databases >/dev/null 2>&1 || true' EXIT
pg_admin "CREATE DATABASE $DB"
start_server "$(db_url $DB)"
# Each database limit is measured in the same round as the service's own figure, on the database
# in the same state: measured after the write-heavy scenarios instead, pgbench read ran at little
# more than half its rate on a fresh database.
for run in $(seq 1 "$RUNS"); do
    bench pg-health "$run" health "$CONCURRENCY"
    bench pg-get-partner "$run" get-partner "$CONCURRENCY"
    PARTNER_ID=$(psql "$(db_url $DB)" -qAtX -c "SELECT id FROM partners LIMIT 1")
    pgbench_tps pg-read "$run" "$(db_url $DB)" "$OUT/read.sql" "$PARTNER_ID"
done
for run in $(seq 1 "$RUNS"); do
    bench pg-create-partner "$run" create-partner "$CONCURRENCY"
    pgbench_tps pg-write "$run" "$(db_url $DB)" "$OUT/write.sql" "$PARTNER_ID"
done
for run in $(seq 1 "$RUNS"); do
    bench pg-two-tier "$run" two-tier-flow "$(( CONCURRENCY / 4 ))"
done
for conc in $SWEEP; do
    for run in $(seq 1 "$RUNS"); do
        bench "sweep-health-$conc" "$run" health "$conc"
        bench "sweep-get-partner-$conc" "$run" get-partner "$conc"
    done
    median "sweep-health-$conc" "sweep-get-partner-$conc"
done
median pg-health pg-get-partner pg-read pg-create-partner pg-write pg-two-tier
stop_server pg
pg_admin "DROP DATABASE $DB WITH (FORCE)"

# Transfers, on a database of their own (their seed is per worker): pc-bench's workers and
# pgbench's clients each move their own batch of ten back and forth, in alternate rounds.
pg_admin "CREATE DATABASE ${DB}_transfer"
start_server "$(db_url ${DB}_transfer)"
for run in $(seq 1 "$RUNS"); do
    bench pg-transfer "$run" transfer "$CONCURRENCY"
    if [ "$run" = 1 ]; then psql "$(db_url ${DB}_transfer)" -qAtX -v ON_ERROR_STOP=1 -c "$BATCHES_SQL"; fi
    pgbench_tps pg-transfer-sql "$run" "$(db_url ${DB}_transfer)" "$OUT/transfer.sql" unused
done
median pg-transfer pg-transfer-sql
stop_server pg-transfer
pg_admin "DROP DATABASE ${DB}_transfer WITH (FORCE)"

# A partner's page of 50 subscriptions over a small and a large table, each in a fresh database
# behind a server of its own, measured alternately.
declare -A LIST_PORT LIST_PID
next_port=$PORT
for rows in $SMALL $LARGE; do
    pg_admin "CREATE DATABASE ${DB}_$rows"
    next_port=$(( next_port + 1 )); LIST_PORT[$rows]=$next_port
    start_server "$(db_url ${DB}_$rows)" "${LIST_PORT[$rows]}"
    LIST_PID[$rows]=$SERVER_PID
done
for run in $(seq 1 "$RUNS"); do
    for rows in $SMALL $LARGE; do
        bench "pg-list-$rows" "$run" list-subscriptions "$CONCURRENCY" --port "${LIST_PORT[$rows]}" \
            --rows "$rows" --database-url "$(db_url ${DB}_$rows)"
    done
done
for rows in $SMALL $LARGE; do
    median "pg-list-$rows"
    stop_server "pg-list-$rows" "${LIST_PID[$rows]}"
    pg_admin "DROP DATABASE ${DB}_$rows WITH (FORCE)"
done

echo "== Events (PostgreSQL): commit-to-WatchEvents delay at a steady write rate, idle watchers, the relay"
# Writers commit EVENTS_RATE changes a second while one watcher notes each event's arrival; then
# EVENTS_IDLE watchers sit idle while the server's memory is sampled; then the relay (run by
# pc-bench itself) publishes a backlog of EVENTS_BACKLOG events to a NATS stream of the run's own.
pg_admin "CREATE DATABASE ${DB}_events"
start_server "$(db_url ${DB}_events)"
"$BIN/pc-bench" events --target "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --database-url "$(db_url ${DB}_events)" --nats-url "$NATS_URL" --rate "$EVENTS_RATE" --duration "$DURATION" \
    --idle-watchers "$EVENTS_IDLE" --idle-secs "$EVENTS_IDLE_SECS" --backlog "$EVENTS_BACKLOG" \
    --json "$OUT/events.json" | sed "s/^/  /"
stop_server events
pg_admin "DROP DATABASE ${DB}_events WITH (FORCE)"

echo "== Overload (PostgreSQL): bursts far past the admission limit"
# Each burst gets a fresh server (its own peak memory) and, just before it on that server, the
# GetPartner figure at concurrency 64 its admitted throughput is compared with. 100 calls per
# connection: the server lets MAX_CONCURRENT_STREAMS (32) of them be open at once and the client
# queues the rest, as a gRPC client does; their wait is in the workers' latencies.
# The server and the load generator each get a core of their own (PostgreSQL floats), for the
# baseline as for the bursts: tens of thousands of client tasks on the server's cores would be
# measured as the server's slowness. The probes (health, one GetPartner) run on a thread of the
# load generator's own, beside its workers.
SERVER_PIN=""; CLIENT_PIN=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SERVER_PIN="taskset -c 0"; CLIENT_PIN="taskset -c 1"; fi
HEALTH_PORT=$(( PORT + 50 ))
pg_admin "CREATE DATABASE ${DB}_burst"
for in_flight in $BURSTS; do
    SERVER_WRAP=$SERVER_PIN MAX_IN_FLIGHT=$BURST_LIMIT HEALTH_LISTEN_ADDR=127.0.0.1:$HEALTH_PORT \
        start_server "$(db_url ${DB}_burst)"
    $CLIENT_PIN "$BIN/pc-bench" run --target "http://127.0.0.1:$PORT" --scenario get-partner \
        --concurrency "$BURST_BASE" --duration "$DURATION" --warmup "$WARMUP" \
        --json "$OUT/burst-base-$in_flight.json" | sed "s/^/  /"
    baseline=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['throughput'])" "$OUT/burst-base-$in_flight.json")
    $CLIENT_PIN "$BIN/pc-bench" burst --target "http://127.0.0.1:$PORT" --health-target "http://127.0.0.1:$HEALTH_PORT" \
        --in-flight "$in_flight" --connections $(( (in_flight + 99) / 100 )) --duration "$DURATION" \
        --server-pid "$SERVER_PID" --baseline "$baseline" --json "$OUT/burst-$in_flight.json" | sed "s/^/  /"
    stop_server "burst-$in_flight"
done
pg_admin "DROP DATABASE ${DB}_burst WITH (FORCE)"

echo "== SQLite (the embedded default)"
SQLITE=$(mktemp -d)/bench.db
start_server "sqlite://$SQLITE?mode=rwc"
for run in $(seq 1 "$RUNS"); do
    bench sqlite-health "$run" health "$CONCURRENCY"
    bench sqlite-get-partner "$run" get-partner "$CONCURRENCY"
done
median sqlite-health sqlite-get-partner
stop_server sqlite
rm -rf "$(dirname "$SQLITE")"

"$BIN/pc-bench" report --results "$OUT" --sweep "$SWEEP" --chart bench/throughput.svg
