#!/usr/bin/env bash
# Throughput of the queue extension against a naive one-table baseline,
# with pgbench, on a private server.  As root on Debian 12:
#
#     bash bench/run.sh              # 20 s per run, 3 rounds (~45 min)
#     bash bench/run.sh --smoke      # 3 s per run, 1 round, small backlogs (~2 min, CI)
#     bash bench/run.sh --peers      # also pg-boss, graphile-worker, PgQ, BullMQ
#
# Options: --duration SECONDS, --rounds N, --backlog JOBS (smallest drain
# backlog), --sync-pass (also run the throughput workloads with
# synchronous_commit=on), --wake-rate JOBS/S (default 500), --relay-rate
# EVENTS/S (default 1000), --snapshot-rate JOBS/S (default 3000), --hold
# SECONDS (default 180), --only LIST (some of core,wake,relay,sagas,backlog,
# snapshot,peers; default all but peers), --peers (add peers; installs
# postgresql-15-pgq3, redis-server and bench/node's npm modules; never with
# --smoke), --out DIR (default bench/results; --smoke writes to a temp dir).
#
# Workloads (bench/*.sql), each run for the queue and for the baseline, the
# two systems alternating between rounds (queue first in odd rounds):
#   enqueue            one job per call, 8 clients
#   enqueue_batch      100 jobs per call (enqueue_many), 8 clients
#   enqueue_payloads   100 jobs per call (enqueue_payloads), 8 clients
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
#   snapshot  claim rate under a held snapshot, for the queue and the baseline:
#             producers enqueue at a steady --snapshot-rate (pgbench -R, 2
#             clients) while 4 consumers claim 1 + complete as fast as they can
#             (claim_complete_1.sql; baseline_claim_delete_1.sql), in three
#             phases: before, during (another session of the database holds a
#             REPEATABLE READ snapshot for --hold seconds) and after; before and
#             after last min(--hold, 60) s (--smoke: 3 s each).  Jobs done and
#             the backlog are sampled every 10 s (--smoke: 1 s) and at each
#             phase's end; jobs/s per phase, and during / before
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

smoke=0 duration=20 rounds=3 backlog_min=100000 sync_pass=0 out_dir=
wake_rate=500 relay_rate=1000 only=core,wake,relay,sagas,backlog,snapshot peers=0
snapshot_rate=3000 hold=180
cmdline="bash bench/run.sh${*:+ $*}"
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
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
        --snapshot-rate) snapshot_rate=$2; shift ;;
        --hold) hold=$2; shift ;;
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
    duration=3 rounds=1 backlog_min=20000 hold=3
    [ -n "$out_dir" ] || out_dir=$(mktemp -d /tmp/queue-bench-results.XXXXXX)
fi
[ -n "$out_dir" ] || out_dir=$here/bench/results
for v in "$snapshot_rate" "$hold"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --snapshot-rate and --hold take a positive integer" >&2; exit 2; }
done
for w in ${only//,/ }; do
    case "$w" in core|wake|relay|sagas|backlog|snapshot|peers) ;;
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
source bench/common.sh
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

cluster_start bench 5478 5479 "${bench_settings[@]}"
log=$CLUSTER_DIR/pgbench.log

# fmt N: N rounded, with thousands separators.
fmt() { printf '%.0f' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

echo "bench: PostgreSQL $(q 'SHOW server_version') in $CLUSTER_DIR, port $CLUSTER_PORT"
echo "bench: settings: $(settings_text)"
echo "bench: $duration s per run, $rounds round(s), drain backlogs >= $backlog_min jobs$([ $smoke = 1 ] && echo ' (smoke)')"
bench_schema
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
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
-- snapshot: the samples of each run (n: 0, 1, ... in time order; phase: the
-- phase of the interval that ends at the sample) and the consumers' calls
-- per second (pgbench's aggregate log: t is the interval's start, epoch s)
CREATE TABLE bench_snapshot_sample (system text, n int, phase text, t timestamptz,
                                    done bigint, backlog bigint);
CREATE TABLE bench_snapshot_calls (system text, t bigint, calls bigint, sum_latency_us float8);
SQL
if wanted peers; then peers_setup; fi

# --- the two systems ------------------------------------------------------
# queue: jobs live in queue.job, finished ones in queue.job_archive.
# baseline: rows of bench_naive.
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
    "enqueue_payloads enqueue 100 8 enqueue_payloads.sql baseline_enqueue_batch.sql 1"
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

# snapshot: the claim rate at a steady offered rate, before, during and after
# another session of the same database holds a REPEATABLE READ snapshot.
# While it is held, vacuum cannot remove the rows (and index entries) that
# claims leave behind, so a claim that walks the claim order from its start
# wades through ever more of them.  Each system runs once, from empty tables.
snap_pre=$((hold < 60 ? hold : 60))     # the before and after phases
snap_every=$([ $smoke = 1 ] && echo 1 || echo 10)
snap_n=0 snap_ins0=0

# usec: the wall clock in microseconds (bash's $EPOCHREALTIME, any locale).
usec() { echo "${EPOCHREALTIME//[.,]/}"; }
sleep_until() {                         # sleep_until MICROSECONDS
    local d=$(($1 - $(usec)))
    [ "$d" -le 0 ] || sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
}

# snap_sample SYSTEM PHASE: records sample $snap_n, the end of an interval of
# PHASE: jobs done so far and the backlog, read in one snapshot for the
# queue.  The baseline has no history, so its jobs done are the rows inserted
# (the id sequence, read first and outside MVCC) minus the rows left, read in
# the next statement, microseconds later.  t is the statement's start, about
# when its snapshot was taken (a count can take 0.1 s on a bloated table).
snap_sample() {
    local system=$1 phase=$2
    if [ "$system" = queue ]; then
        q "INSERT INTO bench_snapshot_sample
           SELECT 'queue', $snap_n, '$phase', statement_timestamp(),
                  (SELECT count(*) FROM queue.job_archive WHERE state = 'completed'),
                  (SELECT count(*) FROM queue.job)"
    else
        psql -X -q -At -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS ins FROM bench_naive_id_seq \gset
INSERT INTO bench_snapshot_sample
SELECT 'baseline', $snap_n, '$phase', statement_timestamp(), :ins - $snap_ins0 - count(*), count(*)
  FROM bench_naive;
SQL
    fi
    snap_n=$((snap_n + 1))
}

# snap_phase SYSTEM PHASE SECONDS: lets PHASE run SECONDS s from now (just
# after the sample that began it), sampling every $snap_every s on the way
# but not in its last half second.  The caller takes the sample that ends it.
snap_phase() {
    local system=$1 phase=$2 start k=1
    local end
    start=$(usec)
    end=$((start + $3 * 1000000))
    while [ $((start + k * snap_every * 1000000)) -lt $((end - 500000)) ]; do
        sleep_until $((start + k * snap_every * 1000000))
        snap_sample "$system" "$phase"
        k=$((k + 1))
    done
    sleep_until "$end"
}

# the session holding the snapshot: psql reading from a FIFO, so that the
# hold ends when this script says so, and it is idle in its transaction
# meanwhile (its backend_xmin stays that of its snapshot).
hold_fd= hold_pid= hold_xmin=
holder_xmin() {
    q "SELECT coalesce(max(backend_xmin::text), '') FROM pg_stat_activity
        WHERE application_name = 'bench_snapshot_hold' AND state = 'idle in transaction'"
}
hold_start() {
    local fifo=$CLUSTER_DIR/hold.fifo i
    rm -f "$fifo"
    mkfifo "$fifo"
    PGAPPNAME=bench_snapshot_hold psql -X -q -At -v ON_ERROR_STOP=1 <"$fifo" >"$CLUSTER_DIR/hold.log" 2>&1 &
    hold_pid=$!
    bg_pids+=("$hold_pid")
    exec {hold_fd}>"$fifo"
    # the snapshot is taken by the transaction's first query; any table will
    # do: its xmin holds back vacuum in the whole database
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM bench_result;" >&"$hold_fd"
    for ((i = 0; i < 200; i++)); do
        hold_xmin=$(holder_xmin)
        [ -z "$hold_xmin" ] || return 0
        sleep 0.05
    done
    echo "bench: snapshot: the holding session did not take its snapshot" >&2
    cat "$CLUSTER_DIR/hold.log" >&2
    return 1
}
hold_end() {
    local rc=0
    [ "$(holder_xmin)" = "$hold_xmin" ] ||
        { echo "bench: snapshot: the holding session lost its snapshot (xmin $hold_xmin)" >&2; return 1; }
    echo "COMMIT;" >&"$hold_fd"
    exec {hold_fd}>&-
    wait "$hold_pid" || rc=$?
    [ $rc = 0 ] || { echo "bench: snapshot: the holding session failed:" >&2; cat "$CLUSTER_DIR/hold.log" >&2; return 1; }
}

# snap_run SYSTEM: one run of the three phases.
snap_run() {
    local system=$1 pscript cscript clog=$CLUSTER_DIR/snap-consumers.log plog=$CLUSTER_DIR/snap-producers.log
    local prefix=$CLUSTER_DIR/snap-calls total cpid
    if [ "$system" = queue ]; then pscript=enqueue.sql cscript=claim_complete_1.sql
    else pscript=baseline_enqueue.sql cscript=baseline_claim_delete_1.sql; fi
    # Start from empty tables that the planner has statistics for, as after
    # the drain workloads' preload: 10,000 jobs, VACUUM ANALYZE, all done at
    # once (not vacuumed again), the same for both systems.  Without them
    # the queue does not sustain the rate even before the hold: a backend
    # that plans complete() while queue.job is small keeps a plan that scans
    # the whole table (a seq scan and a hash join) until a VACUUM or ANALYZE
    # of queue.job replans it, so once a backlog builds up every completion
    # reads all of it.  (The baseline's prepared DELETE has the same flaw.)
    reset_tables
    preload "$system" 10000
    if [ "$system" = queue ]; then
        q "SELECT queue.complete_many(array_agg(job_id), array_agg(lease_token))
             FROM queue.claim('bench', 'seed', 10000)" >/dev/null
    else
        q "DELETE FROM bench_naive"
    fi
    [ "$(live "$system")" = 0 ] || { echo "bench: snapshot: the seed jobs were not all done" >&2; return 1; }
    q "CHECKPOINT"
    snap_ins0=$(q "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM bench_naive_id_seq")
    snap_n=0
    rm -f "$prefix".*
    # pgbench runs past the last sample (1 s to connect, a few s to spare
    # for the samples and the hold's start and end): it has no way to be
    # stopped cleanly, and the script waits for it
    total=$((1 + 2 * snap_pre + hold + 3 + (2 * snap_pre + hold) / 30))
    pgbench_bg "$clog" "$cscript" 4 "$total" -l --aggregate-interval=1 --log-prefix="$prefix"
    cpid=$bg_pid
    pgbench_bg "$plog" "$pscript" 2 "$total" -R "$snapshot_rate"
    sleep 1
    snap_sample "$system" start
    snap_phase "$system" before "$snap_pre"
    hold_start
    snap_sample "$system" before
    snap_phase "$system" during "$hold"
    hold_end
    snap_sample "$system" during
    snap_phase "$system" after "$snap_pre"
    snap_sample "$system" after
    kill -0 "$cpid" 2>/dev/null && kill -0 "$bg_pid" 2>/dev/null ||
        { echo "bench: snapshot: pgbench ended before the last sample (the machine is too slow for its -T)" >&2; return 1; }
    pgbench_wait "$bg_pid" "$plog" "$pscript"
    pgbench_wait "$cpid" "$clog" "$cscript"
    bg_pids=()
    # interval start (s), calls, sum of latencies (us): columns 1 to 3
    cat "$prefix".* | awk -v s="$system" '{ print s "\t" $1 "\t" $2 "\t" $3 }' |
        psql -X -q -v ON_ERROR_STOP=1 -c "\\copy bench_snapshot_calls FROM pstdin"
    extra 5 snapshot "$system" "
        WITH s AS (
            SELECT n, phase, t, done, backlog, lag(t) OVER w AS t_prev,
                   lag(done) OVER w AS done_prev, lag(backlog) OVER w AS backlog_prev,
                   min(t) OVER () AS t_start
              FROM bench_snapshot_sample WHERE system = '$system' WINDOW w AS (ORDER BY n)
        ), i AS (               -- the intervals between samples
            SELECT n, phase, t_prev, t, extract(epoch FROM t - t_prev) AS secs,
                   done - done_prev AS jobs, backlog_prev, backlog,
                   extract(epoch FROM t - t_start) AS at_s
              FROM s WHERE n > 0
        ), p AS (
            SELECT phase, min(t_prev) AS t0, max(t) AS t1, sum(secs) AS secs, sum(jobs) AS jobs,
                   (array_agg(backlog_prev ORDER BY n))[1] AS backlog_start,
                   (array_agg(backlog ORDER BY n DESC))[1] AS backlog_end,
                   greatest(max(backlog), max(backlog_prev)) AS backlog_max
              FROM i GROUP BY phase
        ), c AS (               -- the consumers' whole logged seconds inside each phase
            SELECT p.phase, count(DISTINCT c.t) AS secs, sum(c.calls) AS calls,
                   sum(c.sum_latency_us) AS lat
              FROM p JOIN bench_snapshot_calls c ON c.system = '$system'
               AND c.t >= ceil(extract(epoch FROM p.t0)) AND c.t <= floor(extract(epoch FROM p.t1)) - 2
             GROUP BY p.phase
        ), r AS (
            SELECT p.*, p.jobs / p.secs AS rate, c.calls / nullif(c.secs, 0) AS calls_per_s,
                   c.lat / nullif(c.calls, 0) / 1000 AS call_ms
              FROM p LEFT JOIN c USING (phase)
        )
        SELECT jsonb_build_object(
                 'system', '$system', 'offered_rate', $snapshot_rate, 'producer_clients', 2,
                 'consumers', 4, 'hold_s', $hold, 'before_after_s', $snap_pre,
                 'sample_every_s', $snap_every,
                 'consumer_script', '$cscript', 'producer_script', '$pscript',
                 'phases', (SELECT jsonb_agg(jsonb_build_object(
                               'phase', phase, 'seconds', round(secs::numeric, 2), 'jobs', jobs,
                               'jobs_per_s', round(rate::numeric, 1),
                               'enqueued_per_s', round(((jobs + backlog_end - backlog_start) / secs)::numeric, 1),
                               'backlog_start', backlog_start, 'backlog_end', backlog_end,
                               'backlog_max', backlog_max,
                               'consumer_calls_per_s', round(calls_per_s::numeric, 1),
                               'consumer_call_ms', round(call_ms::numeric, 3))
                             ORDER BY array_position(ARRAY['before', 'during', 'after'], phase)) FROM r),
                 'ratio_during_before', (SELECT round((d.rate / nullif(b.rate, 0))::numeric, 3)
                                           FROM r d, r b WHERE d.phase = 'during' AND b.phase = 'before'),
                 'ratio_after_before', (SELECT round((a.rate / nullif(b.rate, 0))::numeric, 3)
                                          FROM r a, r b WHERE a.phase = 'after' AND b.phase = 'before'),
                 'series', (SELECT jsonb_agg(jsonb_build_object(
                               'n', n, 't_s', round(at_s::numeric, 1), 'phase', phase,
                               'seconds', round(secs::numeric, 2), 'jobs', jobs,
                               'jobs_per_s', round((jobs / secs)::numeric, 1), 'backlog', backlog)
                             ORDER BY n) FROM i))"
    q "SELECT format('bench: snapshot %-8s %s: %s', '$system', p->>'phase',
                     format('%s jobs/s done (%s enqueued/s), backlog %s -> %s (max %s); consumers %s calls/s, %s ms per call',
                            p->>'jobs_per_s', p->>'enqueued_per_s', p->>'backlog_start', p->>'backlog_end',
                            p->>'backlog_max', coalesce(p->>'consumer_calls_per_s', '?'),
                            coalesce(p->>'consumer_call_ms', '?')))
         FROM bench_extra, jsonb_array_elements(result->'phases') p
        WHERE workload = 'snapshot' AND variant = '$system'"
    q "SELECT format('bench: snapshot %-8s during / before %s, after / before %s', '$system',
                     result->>'ratio_during_before', result->>'ratio_after_before')
         FROM bench_extra WHERE workload = 'snapshot' AND variant = '$system'"
}

bench_snapshot() {
    q "TRUNCATE bench_snapshot_sample, bench_snapshot_calls"
    snap_run queue
    snap_run baseline
    reset_tables
}

if wanted wake; then bench_wake; fi
if wanted relay; then bench_relay; fi
if wanted sagas; then bench_sagas; fi
if wanted backlog; then bench_backlog; fi
if wanted snapshot; then bench_snapshot; fi
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
setting_list=$(settings_text)

{
    echo "# queue benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`$cmdline\`; queue commit $commit$dirty."
    echo "PostgreSQL $pgver; $cpus CPUs, $mem RAM; load average at the end $load (a shared machine)."
    echo "Server: $setting_list (fsync on); pgbench -M prepared, $duration s per run, $rounds round(s)."
    echo
    echo "jobs/s: median over rounds (min-max); commits/job: commits per job done."
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
           percentile_cont(0.5) WITHIN GROUP (ORDER BY jobs_per_s) AS rate, min(jobs_per_s) AS lo, max(jobs_per_s) AS hi,
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
                      WHEN 'enqueue_payloads' THEN 'enqueue_payloads, 100 jobs per call'
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
ORDER BY ord, array_position(ARRAY['enqueue', 'enqueue_batch', 'enqueue_payloads', 'claim_complete_1', 'claim_complete_50', 'complete_and_claim_1', 'complete_and_claim_50'], wl), cl;
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
        echo "## Wake-up latency, outbox relay, sagas, backlog$(
            [ "$(q "SELECT count(*) FROM bench_extra WHERE workload = 'snapshot'")" = 0 ] ||
            echo ', held snapshot') (synchronous_commit = off, one run each)"
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

if [ "$(q "SELECT count(*) FROM bench_extra WHERE workload = 'snapshot'")" != 0 ]; then
    {
        echo
        echo "### Claim rate under a held snapshot"
        echo
        echo "Producers enqueue one job per transaction at a steady $(fmt "$snapshot_rate") jobs/s (\`pgbench -R\`, 2 clients,"
        echo "\`enqueue.sql\`; baseline: \`baseline_enqueue.sql\`) while 4 consumers claim one job and complete"
        echo "it as fast as they can (\`claim_complete_1.sql\`: claim, commit, \`complete\` with the lease token,"
        echo "commit; baseline: \`baseline_claim_delete_1.sql\`, the \`DELETE ... FOR UPDATE SKIP LOCKED\`, one"
        echo "commit). Each run starts from empty tables that were analyzed with 10,000 jobs in them (enqueued,"
        echo "\`VACUUM ANALYZE\`, then all claimed and completed, or deleted, at once), as after the drain"
        echo "workloads' preload: without statistics, the consumers' cached plans of \`complete\` scan the"
        echo "whole of \`queue.job\` once a backlog builds up. Three phases follow back to back, the first"
        echo "1 s after pgbench starts: before (${snap_pre} s), during"
        echo "(${hold} s: another session of the same database runs \`BEGIN ISOLATION LEVEL REPEATABLE READ\`"
        echo "and a \`SELECT\` from an unrelated table, which takes its snapshot, then stays idle in its"
        echo "transaction, so its \`xmin\` keeps vacuum from removing any row that dies meanwhile; the script"
        echo "checks that \`backend_xmin\` is unchanged at the end), after (${snap_pre} s: committed). The queue"
        echo "runs first, then the baseline. Every ${snap_every} s and at each phase's end a sample reads the"
        echo "jobs done (queue: completed jobs in \`queue.job_archive\`; baseline: rows inserted, from the id"
        echo "sequence, minus rows left) and the backlog (rows in \`queue.job\`, the <= 4 jobs in hand"
        echo "included; rows in \`bench_naive\`). jobs done/s: jobs done between the samples that begin and"
        echo "end the phase, per second between them; enqueued/s: (jobs done + backlog growth) per second;"
        echo "backlog max: over the phase's samples. Consumer calls/s and ms per call: from pgbench's"
        echo "per-second log of the consumers, over the whole seconds inside the phase (to within a"
        echo "second); a call is one claim, with its completion when it got a job, so an empty claim counts."
        echo
        echo "| system | jobs done/s before | during | after | during / before | after / before | backlog at the end of the hold | max during the hold |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        q "SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s |', variant,
                         to_char((b->>'jobs_per_s')::numeric, 'FM999,999,990'),
                         to_char((d->>'jobs_per_s')::numeric, 'FM999,999,990'),
                         to_char((a->>'jobs_per_s')::numeric, 'FM999,999,990'),
                         to_char((r->>'ratio_during_before')::numeric, 'FM990.00'),
                         to_char((r->>'ratio_after_before')::numeric, 'FM990.00'),
                         to_char((d->>'backlog_end')::numeric, 'FM999,999,990'),
                         to_char((d->>'backlog_max')::numeric, 'FM999,999,990'))
             FROM (SELECT variant, result AS r, result->'phases'->0 AS b, result->'phases'->1 AS d,
                          result->'phases'->2 AS a
                     FROM bench_extra WHERE workload = 'snapshot' ORDER BY ord, ctid) x"
        echo
        echo "| system | phase | seconds | enqueued/s | jobs done/s | backlog at start | at end | max | consumer calls/s | ms per call |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        q "SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |', variant, p->>'phase',
                         round((p->>'seconds')::numeric), to_char((p->>'enqueued_per_s')::numeric, 'FM999,999,990'),
                         to_char((p->>'jobs_per_s')::numeric, 'FM999,999,990'),
                         to_char((p->>'backlog_start')::numeric, 'FM999,999,990'),
                         to_char((p->>'backlog_end')::numeric, 'FM999,999,990'),
                         to_char((p->>'backlog_max')::numeric, 'FM999,999,990'),
                         coalesce(to_char((p->>'consumer_calls_per_s')::numeric, 'FM999,999,990'), 'n/a'),
                         coalesce(p->>'consumer_call_ms', 'n/a'))
             FROM (SELECT variant, ord, ctid FROM bench_extra WHERE workload = 'snapshot') x,
                  LATERAL (SELECT result->'phases' AS ps FROM bench_extra e WHERE e.ctid = x.ctid) y,
                  jsonb_array_elements(ps) WITH ORDINALITY AS p(p, i)
            ORDER BY x.ord, x.ctid, p.i"
        echo
        echo "Jobs done per second and backlog, per interval between samples (t: seconds since the first"
        echo "sample of the queue's run, at the interval's end; the two runs follow the same schedule):"
        echo
        echo "| t (s) | phase | queue jobs/s | queue backlog | baseline jobs/s | baseline backlog |"
        echo "|---:|---|---:|---:|---:|---:|"
        q "WITH s AS (SELECT variant, e->>'phase' AS phase, (e->>'n')::int AS n, (e->>'t_s')::numeric AS t_s,
                             (e->>'jobs_per_s')::numeric AS rate, (e->>'backlog')::numeric AS backlog
                        FROM bench_extra, jsonb_array_elements(result->'series') e
                       WHERE workload = 'snapshot')
           SELECT format('| %s | %s | %s | %s | %s | %s |', round(coalesce(q.t_s, b.t_s)),
                         coalesce(q.phase, b.phase),
                         coalesce(to_char(q.rate, 'FM999,999,990'), ''), coalesce(to_char(q.backlog, 'FM999,999,990'), ''),
                         coalesce(to_char(b.rate, 'FM999,999,990'), ''), coalesce(to_char(b.backlog, 'FM999,999,990'), ''))
             FROM (SELECT * FROM s WHERE variant = 'queue') q
             FULL JOIN (SELECT * FROM s WHERE variant = 'baseline') b USING (n)
            ORDER BY n"
        if [ $smoke = 1 ]; then echo; echo "(--smoke: ${hold} s phases, a sample every second.)"; fi
    } >>"$md"
fi

if wanted peers; then peers_report "$md"; fi

peers_json="null"
if wanted peers; then peers_json=$peers_json_sql; fi
psql -X -q -At -v ON_ERROR_STOP=1 -v peer_versions="${peer_versions:-}" \
    -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v cmd="$cmdline" -v commit="$commit$dirty" \
    -v settings="$setting_list" -v duration="$duration" -v rounds="$rounds" -v cpus="$cpus" \
    -v mem="$mem" -v load="$load" -v smoke="$smoke" -v wake_rate="$wake_rate" \
    -v relay_rate="$relay_rate" -v snapshot_rate="$snapshot_rate" -v hold="$hold" >"$json" <<SQL
SELECT jsonb_pretty(jsonb_build_object(
    'date', :'date', 'command', :'cmd', 'commit', :'commit',
    'postgres', current_setting('server_version'), 'cpus', :'cpus'::int, 'memory', :'mem',
    'load_average_at_end', :'load', 'server_settings', :'settings',
    'pgbench', '-M prepared', 'duration_s', :'duration'::int, 'rounds', :'rounds'::int,
    'smoke', :'smoke' = '1',
    'summary', (
        SELECT jsonb_agg(s ORDER BY s.pass, array_position(ARRAY['enqueue', 'enqueue_batch', 'enqueue_payloads',
                         'claim_complete_1', 'claim_complete_50', 'complete_and_claim_1',
                         'complete_and_claim_50'], s.workload), s.clients DESC)
          FROM (SELECT q.pass, q.workload, q.batch, q.clients,
                       round(q.rate::numeric, 1) AS queue_jobs_per_s,
                       round(q.cpj::numeric, 4) AS queue_commits_per_job,
                       round(b.rate::numeric, 1) AS baseline_jobs_per_s,
                       round(b.cpj::numeric, 4) AS baseline_commits_per_job,
                       round((q.rate / nullif(b.rate, 0))::numeric, 3) AS ratio,
                       q.dry OR b.dry AS backlog_ran_out
                  FROM (SELECT pass, workload, batch, clients, system, percentile_cont(0.5) WITHIN GROUP (ORDER BY jobs_per_s) AS rate,
                               avg(commits_per_job) AS cpj, bool_or(ran_dry) AS dry
                          FROM bench_result GROUP BY 1, 2, 3, 4, 5) q
                  JOIN (SELECT pass, workload, clients, percentile_cont(0.5) WITHIN GROUP (ORDER BY jobs_per_s) AS rate,
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
    'snapshot', (SELECT jsonb_agg(result ORDER BY ord, ctid) FROM bench_extra WHERE workload = 'snapshot'),
    'wake_rate', :'wake_rate'::int, 'relay_rate', :'relay_rate'::int,
    'snapshot_rate', :'snapshot_rate'::int, 'hold_s', :'hold'::int,
    'peers', $peers_json));
SQL

echo
cat "$md"
echo
echo "bench: results in $md and $json ($((SECONDS - started)) s)"
