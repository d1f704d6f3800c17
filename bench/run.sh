#!/usr/bin/env bash
# Throughput of the queue extension against a naive one-table baseline,
# with pgbench, on a private server.  As root on Debian 12:
#
#     bash bench/run.sh              # 20 s per run, 2 rounds (~20 min)
#     bash bench/run.sh --smoke      # 3 s per run, 1 round, small backlogs (<90 s, CI)
#     bash bench/run.sh --peers      # also pg-boss, graphile-worker, PgQ, BullMQ
#
# Options: --duration SECONDS, --rounds N, --backlog JOBS (smallest drain
# backlog), --sync-pass (also run the throughput workloads with
# synchronous_commit=on), --wake-rate JOBS/S (default 500), --relay-rate
# EVENTS/S (default 1000), --only LIST (some of core,wake,relay,sagas,backlog,
# peers; default all but peers), --peers (add peers; installs postgresql-15-pgq3,
# redis-server and bench/node's npm modules; never with --smoke), --out DIR
# (default bench/results; --smoke writes to a temp dir).
#
# Workloads (bench/*.sql), each run for the queue and for the baseline, the
# two systems alternating between rounds (queue first in odd rounds):
#   enqueue            one job per call, 8 clients
#   enqueue_batch      100 jobs per call (enqueue_many), 8 clients
#   claim_complete_1   claim 1 job, then complete it with its lease token in a
#                      second transaction; 8 and 2 clients.  Baseline: DELETE
#                      ... FOR UPDATE SKIP LOCKED LIMIT 1, one commit, no lease
#   claim_complete_50  the same 50 jobs at a time (complete_many)
#   complete_and_claim_1, complete_and_claim_50
#                      the leased path in one call per turn: complete_and_claim
#                      completes the jobs the previous call claimed and claims
#                      the next 1 or 50, one commit; 8 and 2 clients
# The drain workloads start from a fresh backlog, sized from a short probe
# run so that it lasts the whole run (at least --backlog jobs).  Jobs done are
# counted in the tables (completed jobs in queue.job_archive, rows gone from
# the baseline), never inferred from transactions, so claims that come back
# short count for what they did.  jobs/s = jobs done / pgbench's run time.
#
# Then, once each (one round, synchronous_commit = off), the queue alone:
#   wake      wake-up latency: 4 workers claim with wait (wake_claim.sql) while
#             a producer enqueues at a steady --wake-rate (pgbench -R,
#             wake_produce.sql); each claim records clock_timestamp() at its
#             return minus the job's created_at (the enqueue call, committed
#             right after) in a table; p50/p95/p99 in SQL
#   relay     outbox relay, by the background worker (queue.databases is set
#             for this workload only): publishing at a steady --relay-rate
#             (2 clients, pgbench -R), then as fast as 8 clients can; events
#             relayed per second (queue.event_archive.finished_at in the run's
#             window) and relay lag (finished_at - published_at) percentiles
#   sagas     3-step sagas (bench3, no-op steps): 1 client starting sagas as
#             fast as it can (saga_start.sql) and 4 workers claiming up to 10
#             jobs from each step queue and completing them (saga_worker.sql);
#             sagas completed per second
#   backlog   claim 1 + complete (4 clients) at a backlog of 1,000 and of
#             1,000,000 jobs (--smoke: 10,000), each completion enqueueing a
#             replacement so the backlog stays put (claim_complete_refill.sql)
#
# peers (--peers, bench/peers.sh): the core workloads and the wake-up latency
# through pg-boss, graphile-worker and BullMQ (their own Node.js APIs,
# bench/node/bench.js), PgQ (pgbench, pgq_*.sql) and this extension from a
# plain Node.js loop with pg, one database each on the same server, BullMQ on
# a private redis-server; the systems take turns within each round.
#
# Writes results-<date>.md and .json.  Exits non-zero if any step fails.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

smoke=0 duration=20 rounds=2 backlog_min=100000 sync_pass=0 out_dir=
wake_rate=500 relay_rate=1000 only=core,wake,relay,sagas,backlog peers=0
cmdline="bash bench/run.sh${*:+ $*}"
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --duration) duration=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --backlog) backlog_min=$2; shift ;;
        --sync-pass) sync_pass=1 ;;
        --out) out_dir=$2; shift ;;
        --wake-rate) wake_rate=$2; shift ;;
        --relay-rate) relay_rate=$2; shift ;;
        --only) only=$2; shift ;;
        --peers) peers=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[ $peers = 0 ] || only="$only,peers"
if [ $smoke = 1 ]; then
    if [[ ",$only," == *",peers,"* ]]; then echo "bench: --peers is not part of --smoke" >&2; exit 2; fi
    duration=3 rounds=1 backlog_min=20000
    [ -n "$out_dir" ] || out_dir=$(mktemp -d /tmp/queue-bench-results.XXXXXX)
fi
[ -n "$out_dir" ] || out_dir=$here/bench/results
for w in ${only//,/ }; do
    case "$w" in core|wake|relay|sagas|backlog|peers) ;;
        *) echo "bench: unknown workload $w in --only" >&2; exit 2 ;; esac
done
wanted() { [[ ",$only," == *",$1,"* ]]; }
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
started=$SECONDS

if [ "$(id -u)" = 0 ]; then
    bash scripts/setup.sh
else
    echo "bench: not root, skipping scripts/setup.sh (the extension must be installed)"
fi
source scripts/lib/cluster.sh
if wanted peers; then source bench/peers.sh; fi

bg_pids=()
finish() {
    local rc=$?
    for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if wanted peers; then redis_stop; fi
    cluster_stop
    if [ $rc -ne 0 ]; then
        [ $smoke = 0 ] || rmdir "$out_dir" 2>/dev/null || true
        echo "bench: FAILED (exit $rc)" >&2
    fi
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

settings=("shared_buffers = 1GB" "max_connections = 200" "synchronous_commit = off"
          "max_wal_size = 8GB" "checkpoint_timeout = 30min")
cluster_start bench 5478 5479 "${settings[@]}"
log=$CLUSTER_DIR/pgbench.log

q() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
# fmt N: N rounded, with thousands separators.
fmt() { printf '%.0f' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

echo "bench: PostgreSQL $(q 'SHOW server_version') in $CLUSTER_DIR, port $CLUSTER_PORT"
echo "bench: settings: $(IFS=,; echo "${settings[*]}" | sed 's/,/, /g')"
echo "bench: $duration s per run, $rounds round(s), drain backlogs >= $backlog_min jobs$([ $smoke = 1 ] && echo ' (smoke)')"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION queue;
SELECT queue.create_queue('bench', max_attempts => 5);
CREATE TABLE bench_naive (id bigserial PRIMARY KEY, payload jsonb);
CREATE TABLE bench_result (
    pass text, round int, workload text, batch int, clients int, system text,
    script text, backlog bigint, txns bigint, tps float8, seconds float8,
    jobs bigint, jobs_per_s float8, commits_per_job float8, ran_dry boolean);
-- the workloads measured once: wake-up latency, outbox relay, sagas, backlog
SELECT queue.create_queue('wake');
CREATE TABLE bench_wake_sample (job_id bigint, latency interval);
SELECT queue.create_queue('bench_relay');
SELECT queue.create_topic('bench_events');
SELECT queue.subscribe('bench_events', 'bench_relay');
SELECT count(queue.create_queue(q)) FROM unnest(ARRAY['bench_step1', 'bench_step2', 'bench_step3']) q;
SELECT queue.define_saga('bench3', '[{"name": "s1", "queue": "bench_step1"},
                                     {"name": "s2", "queue": "bench_step2"},
                                     {"name": "s3", "queue": "bench_step3"}]');
CREATE TABLE bench_extra (ord int, workload text, variant text, result jsonb);
SQL
if wanted peers; then peers_setup; fi

# --- the two systems ------------------------------------------------------
# queue: jobs live in queue.job, finished ones in queue.job_archive.
# baseline: rows of bench_naive.
reset_tables() { q "TRUNCATE queue.job, queue.job_archive, bench_naive"; }
preload() {                             # preload SYSTEM N
    local system=$1 n=$2
    if [ "$system" = queue ]; then
        # enqueue_many in chunks of 10,000 (queue.max_batch_size)
        q "SELECT sum((SELECT count(*) FROM queue.enqueue_many('bench',
                 (SELECT jsonb_agg(jsonb_build_object('payload',
                           jsonb_build_object('task', 'resize-image', 'n', c * 10000 + i)))
                    FROM generate_series(1, least(10000, $n - c * 10000)) i))))
             FROM generate_series(0, ($n - 1) / 10000) c" >/dev/null
        q "VACUUM ANALYZE queue.job"
    else
        q "INSERT INTO bench_naive (payload)
           SELECT jsonb_build_object('task', 'resize-image', 'n', i) FROM generate_series(1, $n) i"
        q "VACUUM ANALYZE bench_naive"
    fi
}
live() {
    if [ "$1" = queue ]; then q "SELECT count(*) FROM queue.job"; else q "SELECT count(*) FROM bench_naive"; fi
}
completed() {
    if [ "$1" = queue ]; then q "SELECT count(*) FROM queue.job_archive WHERE state = 'completed'"; else echo 0; fi
}

# pgbench_run SCRIPT CLIENTS SECONDS: runs pgbench; sets txns, tps, seconds.
pgbench_run() {
    local script=$1 clients=$2 secs=$3 rc=0
    # -D: complete_and_claim_*.sql start with nothing to complete
    pgbench -n -M prepared -f "$here/bench/$script" -c "$clients" -j $((clients < 2 ? clients : 2)) \
        -T "$secs" -D 'ids={}' -D 'tokens={}' >"$log" 2>&1 || rc=$?
    pgbench_check "$log" "$rc" "$script"
}

# pgbench_check LOG EXIT-CODE SCRIPT: checks a pgbench run (no failed or
# aborted transactions, at least one done); sets txns, tps, seconds.
pgbench_check() {
    local log=$1 rc=$2 script=$3 failed
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
    if [ "$rc" -ne 0 ] || [ -z "$txns" ] || [ -z "$tps" ] || [ "${failed:-0}" != 0 ] ||
       grep -q 'aborted' "$log" || [ "$txns" = 0 ]; then
        echo "bench: pgbench failed on $script (exit $rc):" >&2
        cat "$log" >&2
        return 1
    fi
    seconds=$(awk -v n="$txns" -v t="$tps" 'BEGIN { printf "%.3f", n / t }')
}

# pgbench_bg LOG SCRIPT CLIENTS SECONDS [pgbench options...]: starts pgbench in
# the background; sets bg_pid.  Check it with pgbench_wait.
pgbench_bg() {
    local log=$1 script=$2 clients=$3 secs=$4
    shift 4
    pgbench -n -M prepared -f "$here/bench/$script" -c "$clients" -j $((clients < 2 ? clients : 2)) \
        -T "$secs" "$@" >"$log" 2>&1 &
    bg_pid=$!
    bg_pids+=("$bg_pid")
}
# pgbench_wait PID LOG SCRIPT: waits for a pgbench_bg run and checks it.
pgbench_wait() {
    local rc=0
    wait "$1" || rc=$?
    pgbench_check "$2" "$rc" "$3"
}
# now: the server's clock_timestamp(), the times the measures are taken against.
now() { q "SELECT clock_timestamp()"; }

# Rates seen so far, to size the next backlog: est[system/workload/clients].
declare -A est

# probe SYSTEM WORKLOAD SCRIPT CLIENTS BATCH: a short run that estimates the
# drain rate, growing its backlog until the backlog outlasts it.
probe() {
    local system=$1 workload=$2 script=$3 clients=$4 batch=$5 n=$backlog_min before left njobs
    for _ in 1 2 3 4; do
        reset_tables
        preload "$system" "$n"
        before=$(live "$system")
        pgbench_run "$script" "$clients" 2
        left=$(live "$system")
        if [ "$system" = queue ]; then njobs=$(completed queue); else njobs=$((before - left)); fi
        if [ "$left" -ge $((clients * batch)) ]; then
            est[$system/$workload/$clients]=$(awk -v d="$njobs" -v s="$seconds" 'BEGIN { printf "%.0f", d / s }')
            return 0
        fi
        n=$((n * 4))
    done
    est[$system/$workload/$clients]=$(awk -v d="$n" 'BEGIN { printf "%.0f", d }')
}

# measure PASS ROUND WORKLOAD KIND BATCH CLIENTS SYSTEM SCRIPT COMMITS_PER_TXN
measure() {
    local pass=$1 round=$2 workload=$3 kind=$4 batch=$5 clients=$6 system=$7 script=$8 cpt=$9
    local key=$system/$workload/$clients backlog=0 before after njobs dry=false rate cpj
    if [ "$kind" = drain ]; then
        if [ $smoke = 0 ] && [ -z "${est[$key]:-}" ]; then
            probe "$system" "$workload" "$script" "$clients" "$batch"
        fi
        backlog=$(awk -v r="${est[$key]:-0}" -v d="$duration" -v m="$backlog_min" \
            'BEGIN { b = r * d * 2; if (b < m) b = m; printf "%.0f", int((b + 9999) / 10000) * 10000 }')
    fi
    reset_tables
    [ "$backlog" = 0 ] || preload "$system" "$backlog"
    q "CHECKPOINT"
    before=$(live "$system")
    pgbench_run "$script" "$clients" "$duration"
    after=$(live "$system")
    case "$kind/$system" in
        enqueue/*) njobs=$((after - before)) ;;
        drain/queue) njobs=$(completed queue) ;;
        drain/baseline) njobs=$((before - after)) ;;
    esac
    if [ "$kind" = drain ] && [ "$after" -lt $((clients * batch)) ]; then dry=true; fi
    rate=$(awk -v d="$njobs" -v s="$seconds" 'BEGIN { printf "%.1f", d / s }')
    cpj=$(awk -v n="$txns" -v c="$cpt" -v d="$njobs" 'BEGIN { printf "%.4f", (d > 0 ? n * c / d : 0) }')
    # what the next round's backlog is sized from (a dry run only gives a lower bound)
    est[$key]=$(awk -v r="$rate" -v o="${est[$key]:-0}" -v dry="$dry" \
        'BEGIN { if (dry == "true") { r = 2 * r; if (o > r) r = o }; printf "%.0f", r }')
    q "INSERT INTO bench_result VALUES ('$pass', $round, '$workload', $batch, $clients, '$system',
         '$script', $backlog, $txns, $tps, $seconds, $njobs, $rate, $cpj, $dry)"
    printf 'bench: %-5s r%d %-17s %2d clients %-8s %12s jobs/s  %6s commits/job  (%s jobs in %s s%s%s)\n' \
        "$pass" "$round" "$workload" "$clients" "$system" "$(fmt "$rate")" \
        "$(awk -v x="$cpj" 'BEGIN { printf "%.3g", x }')" "$(fmt "$njobs")" "$seconds" \
        "$([ "$backlog" = 0 ] || echo ", backlog $(fmt "$backlog")")" \
        "$([ $dry = true ] && echo ', BACKLOG RAN OUT: lower bound')"
}

# workload kind batch "clients..." queue-script baseline-script queue-commits-per-call
workloads=(
    "enqueue enqueue 1 8 enqueue.sql baseline_enqueue.sql 1"
    "enqueue_batch enqueue 100 8 enqueue_batch.sql baseline_enqueue_batch.sql 1"
    "claim_complete_1 drain 1 8,2 claim_complete_1.sql baseline_claim_delete_1.sql 2"
    "claim_complete_50 drain 50 8,2 claim_complete_50.sql baseline_claim_delete_50.sql 2"
    "complete_and_claim_1 drain 1 8,2 complete_and_claim_1.sql baseline_claim_delete_1.sql 1"
    "complete_and_claim_50 drain 50 8,2 complete_and_claim_50.sql baseline_claim_delete_50.sql 1"
)
passes=(async)
[ $sync_pass = 0 ] || passes+=(sync)

wanted core || passes=()
for pass in "${passes[@]}"; do
    if [ "$pass" = sync ]; then
        export PGOPTIONS="-c synchronous_commit=on"
        est=()
    fi
    for ((round = 1; round <= rounds; round++)); do
        for w in "${workloads[@]}"; do
            read -r workload kind batch clients_list qscript bscript qcpt <<<"$w"
            for clients in ${clients_list//,/ }; do
                if [ $((round % 2)) = 1 ]; then order=(queue baseline); else order=(baseline queue); fi
                for system in "${order[@]}"; do
                    if [ "$system" = queue ]; then
                        measure "$pass" "$round" "$workload" "$kind" "$batch" "$clients" queue "$qscript" "$qcpt"
                    else
                        measure "$pass" "$round" "$workload" "$kind" "$batch" "$clients" baseline "$bscript" 1
                    fi
                done
            done
        done
    done
    unset PGOPTIONS
done
reset_tables

# --- wake-up latency, outbox relay, sagas, backlog (once each) -------------
# Each stores one row per variant in bench_extra (a jsonb of its figures).
extra() {                               # extra ORD WORKLOAD VARIANT SQL-SELECTING-A-JSONB
    q "INSERT INTO bench_extra SELECT $1, '$2', '$3', ($4)"
}
# ms EXPR: an interval expression in milliseconds, rounded to 0.01.
ms() { echo "round((extract(epoch FROM $1) * 1000)::numeric, 2)"; }
pct() { echo "percentile_cont($2) WITHIN GROUP (ORDER BY extract(epoch FROM $1) * 1000)"; }

# wake: a steady producer (pgbench -R, 2 clients) and 4 workers whose claims
# wait for work.  The workers start first and end a second after it.
bench_wake() {
    local wlog=$CLUSTER_DIR/wake-workers.log plog=$CLUSTER_DIR/wake-producer.log wpid ptxns
    reset_tables
    q "TRUNCATE bench_wake_sample"
    q "CHECKPOINT"
    pgbench_bg "$wlog" wake_claim.sql 4 $((duration + 2))
    wpid=$bg_pid
    sleep 1
    pgbench_bg "$plog" wake_produce.sql 2 "$duration" -R "$wake_rate"
    pgbench_wait "$bg_pid" "$plog" wake_produce.sql
    ptxns=$txns
    pgbench_wait "$wpid" "$wlog" wake_claim.sql
    bg_pids=()
    [ "$(q "SELECT count(*) FROM bench_wake_sample")" = "$ptxns" ] ||
        { echo "bench: wake: $ptxns jobs enqueued but $(q "SELECT count(*) FROM bench_wake_sample") claimed" >&2; return 1; }
    extra 1 wake "4 waiting workers" "
        SELECT jsonb_build_object(
                 'target_rate', $wake_rate, 'producer_clients', 2, 'workers', 4,
                 'seconds', $duration, 'jobs', count(*),
                 'jobs_per_s', round(count(*) / $duration.0, 1),
                 'p50_ms', round($(pct latency 0.5)::numeric, 2),
                 'p95_ms', round($(pct latency 0.95)::numeric, 2),
                 'p99_ms', round($(pct latency 0.99)::numeric, 2),
                 'max_ms', $(ms 'max(latency)'))
          FROM bench_wake_sample"
    q "SELECT format('bench: wake  %s jobs/s (target %s), %s jobs: p50 %s ms, p95 %s ms, p99 %s ms, max %s ms',
                     r->>'jobs_per_s', r->>'target_rate', r->>'jobs', r->>'p50_ms', r->>'p95_ms',
                     r->>'p99_ms', r->>'max_ms')
         FROM (SELECT result AS r FROM bench_extra WHERE workload = 'wake') x"
}

# relay_run VARIANT CLIENTS [pgbench options]: publishes for $duration s while
# the background worker relays, then waits for the outbox to drain.
relay_run() {
    local variant=$1 clients=$2 rlog=$CLUSTER_DIR/relay.log t0 t1 pending drained drain_s
    shift 2
    q "TRUNCATE queue.event, queue.event_archive, queue.job, queue.job_archive"
    q "CHECKPOINT"
    t0=$(now)
    pgbench_bg "$rlog" relay_publish.sql "$clients" "$duration" "$@"
    pgbench_wait "$bg_pid" "$rlog" relay_publish.sql
    bg_pids=()
    t1=$(now)
    pending=$(q "SELECT count(*) FROM queue.event")
    # the rest of the outbox, relayed with no publisher competing
    for ((i = 0; i < 1200; i++)); do
        [ "$(q "SELECT count(*) FROM queue.event")" = 0 ] && break
        sleep 0.1
    done
    [ "$(q "SELECT count(*) FROM queue.event")" = 0 ] ||
        { echo "bench: relay: the outbox did not drain in 120 s" >&2; return 1; }
    [ "$(q "SELECT count(*) FROM queue.event_archive")" = "$txns" ] &&
    [ "$(q "SELECT count(*) FROM queue.job WHERE queue_id = (SELECT id FROM queue.queue WHERE name = 'bench_relay')")" = "$txns" ] ||
        { echo "bench: relay: $txns events published, $(q "SELECT count(*) FROM queue.event_archive") relayed" >&2; return 1; }
    extra 2 relay "$variant" "
        WITH w AS (SELECT '$t0'::timestamptz AS t0, '$t1'::timestamptz AS t1),
        a AS (SELECT a.published_at, a.finished_at, a.finished_at - a.published_at AS lag FROM queue.event_archive a),
        secs AS (SELECT count(*) AS n FROM a, w
                  WHERE a.finished_at >= date_trunc('second', w.t0) + interval '1 s'
                    AND a.finished_at < date_trunc('second', w.t1)
                  GROUP BY date_trunc('second', a.finished_at))
        SELECT jsonb_build_object(
                 'clients', $clients, 'target_rate', $( [ $# -gt 0 ] && echo "$relay_rate" || echo null ),
                 'seconds', round(extract(epoch FROM w.t1 - w.t0)::numeric, 2),
                 'events', count(*),
                 'published_per_s', round(count(*) / extract(epoch FROM w.t1 - w.t0), 1),
                 'relayed_per_s', round(count(*) FILTER (WHERE a.finished_at <= w.t1)
                                        / extract(epoch FROM w.t1 - w.t0), 1),
                 'relayed_per_s_min', (SELECT min(n) FROM secs),
                 'relayed_per_s_max', (SELECT max(n) FROM secs),
                 'pending_at_end', $pending,
                 'drain_s', round(extract(epoch FROM max(a.finished_at) - w.t1)::numeric, 2),
                 'lag_p50_ms', round($(pct a.lag 0.5)::numeric, 2),
                 'lag_p95_ms', round($(pct a.lag 0.95)::numeric, 2),
                 'lag_p99_ms', round($(pct a.lag 0.99)::numeric, 2),
                 'lag_max_ms', $(ms 'max(a.lag)'))
          FROM a, w GROUP BY w.t0, w.t1"
    q "SELECT format('bench: relay %-24s published %s/s, relayed %s/s (%s-%s per second), %s pending at the end; lag p50 %s ms, p95 %s ms, p99 %s ms, max %s ms',
                     '$variant', r->>'published_per_s', r->>'relayed_per_s', r->>'relayed_per_s_min',
                     r->>'relayed_per_s_max', r->>'pending_at_end', r->>'lag_p50_ms', r->>'lag_p95_ms',
                     r->>'lag_p99_ms', r->>'lag_max_ms')
         FROM (SELECT result AS r FROM bench_extra WHERE workload = 'relay' AND variant = '$variant') x"
}

# worker_state: the state of this database's background worker ('' for none).
worker_state() { q "SELECT coalesce(max(state), '') FROM queue.workers WHERE database = current_database()"; }

bench_relay() {
    local i
    q "ALTER SYSTEM SET queue.databases = 'postgres'"
    q "SELECT pg_reload_conf()" >/dev/null
    for ((i = 0; i < 100; i++)); do [ "$(worker_state)" = idle ] && break; sleep 0.1; done
    [ "$(worker_state)" = idle ] || { echo "bench: relay: the background worker did not start" >&2; return 1; }
    relay_run "steady ${relay_rate}/s, 2 clients" 2 -R "$relay_rate"
    relay_run "max, 8 clients" 8
    [ "$(q "SELECT errors FROM queue.workers WHERE database = current_database()")" = 0 ] ||
        { echo "bench: relay: the background worker reported errors" >&2; return 1; }
    q "ALTER SYSTEM RESET queue.databases"
    q "SELECT pg_reload_conf()" >/dev/null
    for ((i = 0; i < 100; i++)); do [ -z "$(worker_state)" ] && break; sleep 0.1; done
    q "TRUNCATE queue.event, queue.event_archive"
}

# sagas: 1 producer starting sagas as fast as it can, 4 no-op step workers.
bench_sagas() {
    local wlog=$CLUSTER_DIR/saga-workers.log plog=$CLUSTER_DIR/saga-producer.log wpid t0 t1 wtxns
    reset_tables
    q "TRUNCATE queue.saga, queue.saga_event"
    q "CHECKPOINT"
    t0=$(now)
    pgbench_bg "$wlog" saga_worker.sql 4 "$duration"
    wpid=$bg_pid
    pgbench_bg "$plog" saga_start.sql 1 "$duration"
    pgbench_wait "$bg_pid" "$plog" saga_start.sql
    pgbench_wait "$wpid" "$wlog" saga_worker.sql
    bg_pids=()
    t1=$(now)
    [ "$(q "SELECT count(*) FROM queue.saga WHERE status NOT IN ('running', 'completed')")" = 0 ] ||
        { echo "bench: sagas: some sagas neither ran nor completed" >&2;
          q "SELECT status, count(*) FROM queue.saga GROUP BY 1" >&2; return 1; }
    extra 3 sagas "1 producer, 4 workers" "
        WITH w AS (SELECT '$t0'::timestamptz AS t0, '$t1'::timestamptz AS t1,
                          extract(epoch FROM '$t1'::timestamptz - '$t0'::timestamptz) AS s)
        SELECT jsonb_build_object(
                 'producers', 1, 'workers', 4, 'worker_batch', 10, 'steps', 3,
                 'seconds', round(w.s::numeric, 2),
                 'started', count(*),
                 'started_per_s', round(count(*) / w.s, 1),
                 'completed', count(*) FILTER (WHERE x.status = 'completed'),
                 'completed_per_s', round(count(*) FILTER (WHERE x.status = 'completed'
                                                            AND x.finished_at <= w.t1) / w.s, 1),
                 'running_at_end', count(*) FILTER (WHERE x.status = 'running'),
                 'saga_p50_ms', round($(pct 'x.finished_at - x.created_at' 0.5)
                                      FILTER (WHERE x.status = 'completed')::numeric, 2),
                 'saga_p99_ms', round($(pct 'x.finished_at - x.created_at' 0.99)
                                      FILTER (WHERE x.status = 'completed')::numeric, 2))
          FROM queue.saga x, w GROUP BY w.t0, w.t1, w.s"
    q "SELECT format('bench: sagas started %s/s, completed %s/s (%s steps/s), %s running at the end; start to completion p50 %s ms, p99 %s ms',
                     r->>'started_per_s', r->>'completed_per_s', round((r->>'completed_per_s')::numeric * 3),
                     r->>'running_at_end', r->>'saga_p50_ms', r->>'saga_p99_ms')
         FROM (SELECT result AS r FROM bench_extra WHERE workload = 'sagas') x"
    q "TRUNCATE queue.saga, queue.saga_event"
}

# backlog: claim 1 + complete with a replacement enqueued, 4 clients, at two
# backlog sizes.
bench_backlog() {
    local n left njobs
    for n in 1000 $([ $smoke = 1 ] && echo 10000 || echo 1000000); do
        reset_tables
        preload queue "$n"
        q "CHECKPOINT"
        pgbench_run claim_complete_refill.sql 4 "$duration"
        njobs=$(completed queue)
        left=$(live queue)
        extra 4 backlog "$n" "
            SELECT jsonb_build_object('backlog', $n, 'clients', 4, 'batch', 1,
                     'seconds', $seconds, 'jobs', $njobs,
                     'jobs_per_s', round($njobs / $seconds, 1),
                     'commits_per_job', round($txns * 2.0 / nullif($njobs, 0), 3),
                     'backlog_at_end', $left)"
        printf 'bench: backlog %9s jobs: %s jobs/s claimed and completed (4 clients, backlog at the end %s)\n' \
            "$(fmt "$n")" "$(fmt "$(awk -v d="$njobs" -v s="$seconds" 'BEGIN { print d / s }')")" "$(fmt "$left")"
    done
    reset_tables
}

if wanted wake; then bench_wake; fi
if wanted relay; then bench_relay; fi
if wanted sagas; then bench_sagas; fi
if wanted backlog; then bench_backlog; fi
if wanted peers; then bench_peers; fi

# --- the report -----------------------------------------------------------
stamp=$(date -u +%Y-%m-%d-%H%M%S)
md=$out_dir/results-$stamp.md
json=$out_dir/results-$stamp.json
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$here" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with local changes)" || true)
pgver=$(q 'SHOW server_version')
cpus=$(nproc)
mem=$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)
load=$(cut -d' ' -f1-3 /proc/loadavg)
setting_list=$(IFS=,; echo "${settings[*]}" | sed 's/,/, /g')

{
    echo "# queue benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`$cmdline\`; queue commit $commit$dirty."
    echo "PostgreSQL $pgver; $cpus CPUs, $mem RAM; load average at the end $load (a shared machine)."
    echo "Server: $setting_list (fsync on); pgbench -M prepared, $duration s per run, $rounds round(s)."
    echo
    echo "jobs/s: mean over rounds (min-max); commits/job: commits per job done."
    echo "Baseline: one table \`bench_naive(id bigserial primary key, payload jsonb)\`; enqueue = INSERT,"
    echo "claim = \`DELETE ... WHERE id = ANY(ARRAY(SELECT id ... ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED))\`,"
    echo "one commit per call, no lease, no retries, no history.  The queue drains on its leased path:"
    echo "claim (commit), then complete with the lease tokens (commit); or, in the complete_and_claim"
    echo "rows, one call per turn that completes the jobs the previous call claimed and claims the next"
    echo "(one commit)."
    echo
} >"$md"
for pass in "${passes[@]}"; do
    if [ "$pass" = async ]; then
        printf '## synchronous_commit = off\n\n' >>"$md"
    else
        printf '\n## synchronous_commit = on (every commit waits for its WAL flush)\n\n' >>"$md"
    fi
    psql -X -q -At -v ON_ERROR_STOP=1 -v pass="$pass" >>"$md" <<'SQL'
WITH agg AS (
    SELECT workload, clients, system,
           avg(jobs_per_s) AS rate, min(jobs_per_s) AS lo, max(jobs_per_s) AS hi,
           avg(commits_per_job) AS cpj, bool_or(ran_dry) AS dry, count(*) AS runs
      FROM bench_result WHERE pass = :'pass' GROUP BY 1, 2, 3
), num AS (
    SELECT *, to_char(rate, 'FM999,999,990') ||
              CASE WHEN runs > 1 THEN ' (' || to_char(lo, 'FM999,999,990') || '-' ||
                                      to_char(hi, 'FM999,999,990') || ')' ELSE '' END ||
              CASE WHEN dry THEN ' *' ELSE '' END AS rate_text,
           rtrim(rtrim(round(cpj::numeric, 3)::text, '0'), '.') AS cpj_text
      FROM agg
)
SELECT line FROM (
    SELECT 0 AS ord, '' AS wl, 0 AS cl,
           '| workload | clients | queue jobs/s | commits/job | baseline jobs/s | commits/job | queue / baseline |' AS line
    UNION ALL
    SELECT 1, '', 0, '|---|---:|---:|---:|---:|---:|---:|'
    UNION ALL
    SELECT 2, q.workload, -q.clients,
           format('| %s | %s | %s | %s | %s | %s | %s |',
                  CASE q.workload
                      WHEN 'enqueue' THEN 'enqueue, 1 job per call'
                      WHEN 'enqueue_batch' THEN 'enqueue_many, 100 jobs per call'
                      WHEN 'claim_complete_1' THEN 'claim 1 + complete'
                      WHEN 'claim_complete_50' THEN 'claim 50 + complete_many'
                      WHEN 'complete_and_claim_1' THEN 'complete_and_claim, batch 1'
                      WHEN 'complete_and_claim_50' THEN 'complete_and_claim, batch 50'
                      ELSE q.workload END,
                  q.clients, q.rate_text, q.cpj_text, b.rate_text, b.cpj_text,
                  to_char(q.rate / nullif(b.rate, 0), 'FM990.00'))
      FROM num q JOIN num b USING (workload, clients)
     WHERE q.system = 'queue' AND b.system = 'baseline'
) t
ORDER BY ord, array_position(ARRAY['enqueue', 'enqueue_batch', 'claim_complete_1', 'claim_complete_50', 'complete_and_claim_1', 'complete_and_claim_50'], wl), cl;
SQL
done
if [ "$(q "SELECT bool_or(ran_dry) FROM bench_result")" = t ]; then
    echo >>"$md"
    echo "\* the backlog ran out during a run: a lower bound." >>"$md"
fi

# the workloads measured once
if [ "$(q "SELECT count(*) FROM bench_extra")" != 0 ]; then
    {
        echo
        echo "## Wake-up latency, outbox relay, sagas, backlog (synchronous_commit = off, one run each)"
    } >>"$md"
fi
if [ "$(q "SELECT count(*) FROM bench_extra WHERE workload = 'wake'")" != 0 ]; then
    {
        echo
        echo "### Wake-up latency: enqueue commit to claim return"
        echo
        echo "A producer enqueues one job per transaction at a steady rate (\`pgbench -R\`, 2 clients,"
        echo "\`wake_produce.sql\`) while 4 workers loop on \`claim(..., wait => '1 second')\` + \`complete\`"
        echo "(\`wake_claim.sql\`), so a job usually arrives while the workers sleep in their claims. Each"
        echo "claim records \`clock_timestamp()\` at its return minus the job's \`created_at\` (the enqueue"
        echo "call's clock, taken just before the producer's autocommit commit) in a table; the percentiles"
        echo "are computed in SQL over every job of the run. So a sample is the enqueue statement's end and"
        echo "commit, the wake-up, and the claim's own query."
        echo
        echo "| producer rate (target) | workers | jobs | p50 | p95 | p99 | max |"
        echo "|---:|---:|---:|---:|---:|---:|---:|"
        q "SELECT format('| %s/s (%s/s) | %s | %s | %s ms | %s ms | %s ms | %s ms |',
                         to_char((r->>'jobs_per_s')::numeric, 'FM999,990'), r->>'target_rate',
                         r->>'workers', to_char((r->>'jobs')::numeric, 'FM999,999,990'),
                         r->>'p50_ms', r->>'p95_ms', r->>'p99_ms', r->>'max_ms')
             FROM (SELECT result AS r FROM bench_extra WHERE workload = 'wake') x"
    } >>"$md"
fi
if [ "$(q "SELECT count(*) FROM bench_extra WHERE workload = 'relay'")" != 0 ]; then
    {
        echo
        echo "### Outbox relay: throughput and lag"
        echo
        echo "Publishers call \`queue.publish\` (one event per transaction, keyed by one of 1,000"
        echo "customers, \`relay_publish.sql\`) into a topic with one queue subscriber, and the background"
        echo "worker relays (\`queue.databases\` is set for this workload only; default relay settings). First"
        echo "at a steady rate (\`pgbench -R\`, 2 clients), then as fast as 8 clients can publish. relayed/s:"
        echo "events whose \`queue.event_archive.finished_at\` falls in the publishing window, per second of"
        echo "it (min-max: over the window's whole seconds); pending: events still in the outbox when the"
        echo "publishers stopped, which the worker then relays alone in \"drain\" seconds. Lag:"
        echo "\`finished_at - published_at\` over every event of the run; \`finished_at\` is taken when"
        echo "the relay call starts, so the relay's own work and commit (a few ms per batch of up to 1,000)"
        echo "are not in it, and \`published_at\` is the publish call, just before the publisher's commit."
        echo
        echo "| run | published/s | relayed/s (min-max) | pending at end | drain | lag p50 | p95 | p99 | max |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        q "SELECT format('| %s | %s | %s (%s-%s) | %s | %s s | %s ms | %s ms | %s ms | %s ms |',
                         variant, to_char((r->>'published_per_s')::numeric, 'FM999,999,990'),
                         to_char((r->>'relayed_per_s')::numeric, 'FM999,999,990'),
                         to_char((r->>'relayed_per_s_min')::numeric, 'FM999,999,990'),
                         to_char((r->>'relayed_per_s_max')::numeric, 'FM999,999,990'),
                         to_char((r->>'pending_at_end')::numeric, 'FM999,999,990'),
                         greatest((r->>'drain_s')::numeric, 0),
                         r->>'lag_p50_ms', r->>'lag_p95_ms', r->>'lag_p99_ms', r->>'lag_max_ms')
             FROM (SELECT variant, result AS r FROM bench_extra WHERE workload = 'relay' ORDER BY ord, ctid) x"
    } >>"$md"
fi
if [ "$(q "SELECT count(*) FROM bench_extra WHERE workload = 'sagas'")" != 0 ]; then
    {
        echo
        echo "### Sagas: 3-step sagas completed per second"
        echo
        echo "A saga type of three steps, each in its own queue, without compensations. One client starts"
        echo "sagas as fast as it can (\`saga_start.sql\`) while 4 no-op workers claim up to 10 jobs from each"
        echo "step queue in turn and complete them with \`complete_many\` (\`saga_worker.sql\`); each completion"
        echo "enqueues the next step, or completes the saga, in its own transaction. completed/s: sagas"
        echo "completed within the run, per second of it (warm-up included); running at end: sagas started"
        echo "and not finished when the run stopped (the workers' backlog). Start to completion: the saga's"
        echo "\`finished_at - created_at\`."
        echo
        echo "| producers | workers | started/s | completed/s | steps/s | running at end | start to completion p50 | p99 |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
        q "SELECT format('| %s | %s | %s | %s | %s | %s | %s ms | %s ms |',
                         r->>'producers', r->>'workers',
                         to_char((r->>'started_per_s')::numeric, 'FM999,999,990'),
                         to_char((r->>'completed_per_s')::numeric, 'FM999,999,990'),
                         to_char((r->>'completed_per_s')::numeric * 3, 'FM999,999,990'),
                         to_char((r->>'running_at_end')::numeric, 'FM999,999,990'),
                         r->>'saga_p50_ms', r->>'saga_p99_ms')
             FROM (SELECT result AS r FROM bench_extra WHERE workload = 'sagas') x"
    } >>"$md"
fi
if [ "$(q "SELECT count(*) FROM bench_extra WHERE workload = 'backlog'")" != 0 ]; then
    {
        echo
        echo "### Claim rate against the size of the backlog"
        echo
        echo "Claim 1 + complete (two commits per job), 4 clients, from a fresh backlog of N jobs"
        echo "(\`enqueue_many\`, then \`VACUUM ANALYZE\`). The statement that completes a job also enqueues a"
        echo "replacement (\`claim_complete_refill.sql\`), so the backlog stays at N for the whole run; a"
        echo "small backlog is thus made of jobs enqueued moments before they are claimed. jobs/s:"
        echo "completed jobs (counted in \`queue.job_archive\`) per second of pgbench's run."
        echo
        echo "| backlog | clients | jobs/s | commits/job | backlog at end |"
        echo "|---:|---:|---:|---:|---:|"
        q "SELECT format('| %s | %s | %s | %s | %s |',
                         to_char((r->>'backlog')::numeric, 'FM999,999,990'), r->>'clients',
                         to_char((r->>'jobs_per_s')::numeric, 'FM999,999,990'),
                         rtrim(rtrim((r->>'commits_per_job'), '0'), '.'),
                         to_char((r->>'backlog_at_end')::numeric, 'FM999,999,990'))
             FROM (SELECT result AS r FROM bench_extra WHERE workload = 'backlog'
                    ORDER BY (result->>'backlog')::bigint) x"
        if [ $smoke = 1 ]; then echo; echo "(--smoke: 10,000 jobs stand in for 1,000,000.)"; fi
    } >>"$md"
fi

if wanted peers; then peers_report "$md"; fi

peers_json="null"
if wanted peers; then peers_json=$peers_json_sql; fi
psql -X -q -At -v ON_ERROR_STOP=1 -v peer_versions="${peer_versions:-}" \
    -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v cmd="$cmdline" -v commit="$commit$dirty" \
    -v settings="$setting_list" -v duration="$duration" -v rounds="$rounds" -v cpus="$cpus" \
    -v mem="$mem" -v load="$load" -v smoke="$smoke" -v wake_rate="$wake_rate" \
    -v relay_rate="$relay_rate" >"$json" <<SQL
SELECT jsonb_pretty(jsonb_build_object(
    'date', :'date', 'command', :'cmd', 'commit', :'commit',
    'postgres', current_setting('server_version'), 'cpus', :'cpus'::int, 'memory', :'mem',
    'load_average_at_end', :'load', 'server_settings', :'settings',
    'pgbench', '-M prepared', 'duration_s', :'duration'::int, 'rounds', :'rounds'::int,
    'smoke', :'smoke' = '1',
    'summary', (
        SELECT jsonb_agg(s ORDER BY s.pass, array_position(ARRAY['enqueue', 'enqueue_batch',
                         'claim_complete_1', 'claim_complete_50', 'complete_and_claim_1',
                         'complete_and_claim_50'], s.workload), s.clients DESC)
          FROM (SELECT q.pass, q.workload, q.batch, q.clients,
                       round(q.rate::numeric, 1) AS queue_jobs_per_s,
                       round(q.cpj::numeric, 4) AS queue_commits_per_job,
                       round(b.rate::numeric, 1) AS baseline_jobs_per_s,
                       round(b.cpj::numeric, 4) AS baseline_commits_per_job,
                       round((q.rate / nullif(b.rate, 0))::numeric, 3) AS ratio,
                       q.dry OR b.dry AS backlog_ran_out
                  FROM (SELECT pass, workload, batch, clients, system, avg(jobs_per_s) AS rate,
                               avg(commits_per_job) AS cpj, bool_or(ran_dry) AS dry
                          FROM bench_result GROUP BY 1, 2, 3, 4, 5) q
                  JOIN (SELECT pass, workload, clients, avg(jobs_per_s) AS rate,
                               avg(commits_per_job) AS cpj, bool_or(ran_dry) AS dry
                          FROM bench_result WHERE system = 'baseline' GROUP BY 1, 2, 3) b
                 USING (pass, workload, clients)
                 WHERE q.system = 'queue') s),
    'runs', (SELECT jsonb_agg(r ORDER BY r.pass, r.round, r.workload, r.clients DESC, r.system)
               FROM bench_result r),
    'wake_latency', (SELECT result FROM bench_extra WHERE workload = 'wake'),
    'relay', (SELECT jsonb_agg(jsonb_build_object('run', variant) || result ORDER BY ord, ctid)
                FROM bench_extra WHERE workload = 'relay'),
    'sagas', (SELECT result FROM bench_extra WHERE workload = 'sagas'),
    'backlog', (SELECT jsonb_agg(result ORDER BY (result->>'backlog')::bigint)
                  FROM bench_extra WHERE workload = 'backlog'),
    'wake_rate', :'wake_rate'::int, 'relay_rate', :'relay_rate'::int,
    'peers', $peers_json));
SQL

echo
cat "$md"
echo
echo "bench: results in $md and $json ($((SECONDS - started)) s)"
