#!/usr/bin/env bash
# Where enqueue's time goes: the extension's enqueue against plain INSERTs of
# the same job row into tables that drop, one step at a time, what
# queue.job has and the naive baseline's table does not.  As root on
# Debian 12:
#
#     bash bench/anatomy.sh                       # 3 rounds of 10 s per run
#     bash bench/anatomy.sh --rounds 5 --duration 20
#
# Variants, each enqueueing the same payload as bench/enqueue.sql (one job
# per transaction) and bench/enqueue_batch.sql (100 per transaction):
#
#   queue      queue.enqueue / queue.enqueue_many: the row writer, queue.job
#   job        INSERT of the row enqueue writes into queue.job itself: its
#              six indexes (primary key, claim order, and the partial ones
#              for leases, groups, deadlines and deduplication keys) and
#              three CHECK constraints
#   claim_pk   the same row into a copy of queue.job's columns, defaults and
#              CHECK constraints with only the primary key and the claim
#              order's index (what the partial indexes cost)
#   check_pk   the same with only the primary key (what the claim index
#              costs)
#   pk         the same row into a copy of the columns and defaults with only
#              the primary key (what the CHECK constraints cost; the rest is
#              the row)
#   baseline   bench_naive (id, payload), as bench/run.sh's baseline
#
# One private server (bench/run.sh's settings, bench/common.sh); the
# variants take turns, in a rotated order each round; tables are emptied
# before each run.  Prints each run, then per variant and workload the mean
# jobs/s (rows in the table / --duration) and its ratio to the baseline's.
#
# Options: --rounds N (default 3), --duration SECONDS (default 10),
# --clients N (default 8).  SKIP_SETUP=1 skips scripts/setup.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

rounds=3 duration=10 clients=8
usage() { sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift ;;
        --duration) duration=$2; shift ;;
        --clients) clients=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "anatomy: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in "$rounds" "$duration" "$clients"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "anatomy: --rounds, --duration and --clients take a positive integer" >&2; exit 2; }
done

if [ "$(id -u)" = 0 ] && [ "${SKIP_SETUP:-0}" != 1 ]; then bash scripts/setup.sh; fi
source scripts/lib/cluster.sh
source bench/common.sh

bench_workdir anatomy

cluster_start anatomy 5491 5499 "${bench_settings[@]}"
bench_schema
# The copies take the job's columns and defaults; their ids come from
# queue.job's own sequence, as the job's do.
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE bench_job_claim_pk (LIKE queue.job INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                                 PRIMARY KEY (id));
CREATE INDEX ON bench_job_claim_pk (queue_id, priority DESC, run_at, id) WHERE state <> 'blocked';
CREATE TABLE bench_job_check_pk (LIKE queue.job INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                                 PRIMARY KEY (id));
CREATE TABLE bench_job_pk (LIKE queue.job INCLUDING DEFAULTS, PRIMARY KEY (id));
SQL
echo "anatomy: PostgreSQL $(q 'SHOW server_version') in $CLUSTER_DIR, port $CLUSTER_PORT; $(settings_text)"
echo "anatomy: $rounds round(s), $duration s per run, $clients clients"

# The pgbench scripts of the INSERT variants: the row enqueue writes for
# the queue "bench" (max_attempts 5), as one row or 100.
qid=$(q "SELECT id FROM queue.queue WHERE name = 'bench'")
columns="queue_id, state, priority, run_at, attempts, max_attempts, payload"
for t in queue.job bench_job_claim_pk bench_job_check_pk bench_job_pk; do
    v=$t; v=${v#queue.}; v=${v#bench_job_}
    cat >"$work/$v.sql" <<SQL
\\set n random(1, 1000000000)
INSERT INTO $t ($columns)
VALUES ($qid, 'pending', 0, now(), 0, 5, jsonb_build_object('task', 'resize-image', 'n', :n::bigint));
SQL
    cat >"$work/${v}_batch.sql" <<SQL
\\set n random(1, 1000000000)
INSERT INTO $t ($columns)
SELECT $qid, 'pending', 0, now(), 0, 5, jsonb_build_object('task', 'resize-image', 'n', :n::bigint + i)
  FROM generate_series(1, 100) i;
SQL
done
cp bench/enqueue.sql "$work/queue.sql"
cp bench/enqueue_batch.sql "$work/queue_batch.sql"
cp bench/baseline_enqueue.sql "$work/baseline.sql"
cp bench/baseline_enqueue_batch.sql "$work/baseline_batch.sql"
chmod -R a+rX "$work"

table_of() {
    case "$1" in
        queue|job) echo queue.job ;;
        claim_pk) echo bench_job_claim_pk ;;
        check_pk) echo bench_job_check_pk ;;
        pk) echo bench_job_pk ;;
        baseline) echo bench_naive ;;
    esac
}

variants=(queue job claim_pk check_pk pk baseline)
results=$work/results
for ((r = 1; r <= rounds; r++)); do
    for ((i = 0; i < ${#variants[@]}; i++)); do
        v=${variants[$(((i + r - 1) % ${#variants[@]}))]}
        for w in single batch; do
            script=$work/$v.sql
            [ $w = single ] || script=$work/${v}_batch.sql
            q "TRUNCATE queue.job, queue.job_archive, bench_naive, bench_job_claim_pk, bench_job_check_pk, bench_job_pk"
            q CHECKPOINT
            pgbench -n -M prepared -c "$clients" -j "$((clients < 2 ? clients : 2))" -T "$duration" \
                -f "$script" >"$work/pgbench.log" 2>&1 ||
                { cat "$work/pgbench.log" >&2; exit 1; }
            jobs=$(q "SELECT count(*) FROM $(table_of "$v")")
            echo "$r $v $w $jobs" >>"$results"
            awk -v r="$r" -v v="$v" -v w="$w" -v j="$jobs" -v d="$duration" \
                'BEGIN { printf "anatomy: round %d %-8s %-6s %9.0f jobs/s\n", r, v, w, j / d }'
        done
    done
done

echo
echo "variant  workload     jobs/s   / baseline"
awk -v d="$duration" '
    { s[$2, $3] += $4 / d; n[$2, $3]++ }
    END {
        nv = split("queue job claim_pk check_pk pk baseline", order, " ")
        split("single batch", wl, " ")
        for (i = 1; i <= nv; i++)
            for (j = 1; j <= 2; j++) {
                k = order[i] SUBSEP wl[j]; b = "baseline" SUBSEP wl[j]
                printf "%-8s %-8s %10.0f   %10.2f\n", order[i], wl[j], s[k] / n[k], (s[k] / n[k]) / (s[b] / n[b])
            }
    }' "$results"
