#!/usr/bin/env bash
# Throughput of the queue extension against a naive one-table baseline,
# with pgbench, on a private server.  As root on Debian 12:
#
#     bash bench/run.sh              # 20 s per run, 2 rounds (~15 min)
#     bash bench/run.sh --smoke      # 3 s per run, 1 round, small backlogs (<1 min, CI)
#
# Options: --duration SECONDS, --rounds N, --backlog JOBS (smallest drain
# backlog), --sync-pass (also run every workload with synchronous_commit=on),
# --out DIR (default bench/results; --smoke writes to a temp dir).
#
# Workloads (bench/*.sql), each run for the queue and for the baseline, the
# two systems alternating between rounds (queue first in odd rounds):
#   enqueue            one job per call, 8 clients
#   enqueue_batch      100 jobs per call (enqueue_many), 8 clients
#   claim_complete_1   claim 1 job, then complete it with its lease token in a
#                      second transaction; 8 and 2 clients.  Baseline: DELETE
#                      ... FOR UPDATE SKIP LOCKED LIMIT 1, one commit, no lease
#   claim_complete_50  the same 50 jobs at a time (complete_many)
# The drain workloads start from a fresh backlog, sized from a short probe
# run so that it lasts the whole run (at least --backlog jobs).  Jobs done are
# counted in the tables (completed jobs in queue.job_archive, rows gone from
# the baseline), never inferred from transactions, so claims that come back
# short count for what they did.  jobs/s = jobs done / pgbench's run time.
#
# Writes results-<date>.md and .json.  Exits non-zero if any step fails.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

smoke=0 duration=20 rounds=2 backlog_min=100000 sync_pass=0 out_dir=
cmdline="bash bench/run.sh${*:+ $*}"
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --duration) duration=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --backlog) backlog_min=$2; shift ;;
        --sync-pass) sync_pass=1 ;;
        --out) out_dir=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ $smoke = 1 ]; then
    duration=3 rounds=1 backlog_min=20000
    [ -n "$out_dir" ] || out_dir=$(mktemp -d /tmp/queue-bench-results.XXXXXX)
fi
[ -n "$out_dir" ] || out_dir=$here/bench/results
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
started=$SECONDS

if [ "$(id -u)" = 0 ]; then
    bash scripts/setup.sh
else
    echo "bench: not root, skipping scripts/setup.sh (the extension must be installed)"
fi
source scripts/lib/cluster.sh

finish() {
    local rc=$?
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
SQL

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
    pgbench -n -M prepared -f "$here/bench/$script" -c "$clients" -j $((clients < 2 ? clients : 2)) \
        -T "$secs" >"$log" 2>&1 || rc=$?
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
    local failed
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
    if [ $rc -ne 0 ] || [ -z "$txns" ] || [ -z "$tps" ] || [ "${failed:-0}" != 0 ] ||
       grep -q 'aborted' "$log" || [ "$txns" = 0 ]; then
        echo "bench: pgbench failed on $script (exit $rc):" >&2
        cat "$log" >&2
        return 1
    fi
    seconds=$(awk -v n="$txns" -v t="$tps" 'BEGIN { printf "%.3f", n / t }')
}

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
)
passes=(async)
[ $sync_pass = 0 ] || passes+=(sync)

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
    echo "one commit per call, no lease, no retries, no history.  The queue drain is the leased two-step"
    echo "path: claim (commit), then complete with the lease tokens (commit)."
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
                      ELSE q.workload END,
                  q.clients, q.rate_text, q.cpj_text, b.rate_text, b.cpj_text,
                  to_char(q.rate / nullif(b.rate, 0), 'FM990.00'))
      FROM num q JOIN num b USING (workload, clients)
     WHERE q.system = 'queue' AND b.system = 'baseline'
) t
ORDER BY ord, array_position(ARRAY['enqueue', 'enqueue_batch', 'claim_complete_1', 'claim_complete_50'], wl), cl;
SQL
done
if [ "$(q "SELECT bool_or(ran_dry) FROM bench_result")" = t ]; then
    echo >>"$md"
    echo "\* the backlog ran out during a run: a lower bound." >>"$md"
fi

psql -X -q -At -v ON_ERROR_STOP=1 \
    -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v cmd="$cmdline" -v commit="$commit$dirty" \
    -v settings="$setting_list" -v duration="$duration" -v rounds="$rounds" -v cpus="$cpus" \
    -v mem="$mem" -v load="$load" -v smoke="$smoke" >"$json" <<'SQL'
SELECT jsonb_pretty(jsonb_build_object(
    'date', :'date', 'command', :'cmd', 'commit', :'commit',
    'postgres', current_setting('server_version'), 'cpus', :'cpus'::int, 'memory', :'mem',
    'load_average_at_end', :'load', 'server_settings', :'settings',
    'pgbench', '-M prepared', 'duration_s', :'duration'::int, 'rounds', :'rounds'::int,
    'smoke', :'smoke' = '1',
    'summary', (
        SELECT jsonb_agg(s ORDER BY s.pass, array_position(ARRAY['enqueue', 'enqueue_batch',
                         'claim_complete_1', 'claim_complete_50'], s.workload), s.clients DESC)
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
               FROM bench_result r)));
SQL

echo
cat "$md"
echo
echo "bench: results in $md and $json ($((SECONDS - started)) s)"
