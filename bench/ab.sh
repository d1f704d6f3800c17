#!/usr/bin/env bash
# Before and after: two revisions of the extension's library on one private
# server, taking turns, each beside the naive baseline.  As root on Debian 12:
#
#     bash bench/ab.sh OLD NEW                 # e.g. bash bench/ab.sh HEAD~3 HEAD
#     bash bench/ab.sh --rounds 5 --workloads enqueue,complete_and_claim_1 v0.2.0 main
#
# OLD and NEW are any git revisions of this repository; their install
# scripts (the SQL) must be the same, since one database serves both: this
# compares libraries, not schemas.  Each is built (scripts/lib/private.sh)
# into its own private copy of PostgreSQL's installation; one cluster
# (bench/run.sh's settings, from bench/common.sh) is restarted on one copy
# or the other for each turn, OLD first in odd rounds and NEW first in
# even ones.  In a turn, each workload runs for the queue then for the
# baseline, with 8 clients (--clients), --duration seconds each (default
# 10), through pgbench -M prepared and bench/run.sh's scripts:
#
#   enqueue                one job per call            (enqueue.sql)
#   enqueue_batch          100 jobs per call           (enqueue_batch.sql)
#   enqueue_payloads       100 payloads per call       (enqueue_payloads.sql)
#   complete_and_claim_1   the worker loop, batch 1    (complete_and_claim_1.sql)
#   complete_and_claim_50  the same, batch 50          (complete_and_claim_50.sql)
#
# Drains start from a fresh backlog of --backlog jobs (default 300,000) for
# each system; a run that empties either table is marked "ran dry" (batch 50
# wants a backlog of 1,500,000 or more).  Jobs done are counted in the
# tables, as bench/run.sh does.
# Prints each run, then per workload the mean jobs/s of each revision, NEW
# / OLD, and each one's mean ratio to the baseline run beside it.
#
# Options: --rounds N (default 3), --duration SECONDS, --clients N,
# --backlog JOBS, --workloads LIST (default enqueue,enqueue_batch,
# complete_and_claim_1).  SKIP_SETUP=1 skips scripts/setup.sh (build
# dependencies).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

rounds=3 duration=10 clients=8 backlog=300000
workloads=enqueue,enqueue_batch,complete_and_claim_1
usage() { sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift ;;
        --duration) duration=$2; shift ;;
        --clients) clients=$2; shift ;;
        --backlog) backlog=$2; shift ;;
        --workloads) workloads=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "ab: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 2 ] || { usage >&2; exit 2; }
for v in "$rounds" "$duration" "$clients" "$backlog"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "ab: --rounds, --duration, --clients and --backlog take a positive integer" >&2; exit 2; }
done
for w in ${workloads//,/ }; do
    case "$w" in enqueue|enqueue_batch|enqueue_payloads|complete_and_claim_1|complete_and_claim_50) ;;
        *) echo "ab: unknown workload $w" >&2; exit 2 ;; esac
done
declare -A rev
rev[old]=$(git rev-parse --verify --short "$1^{commit}") || { echo "ab: no revision $1" >&2; exit 2; }
rev[new]=$(git rev-parse --verify --short "$2^{commit}") || { echo "ab: no revision $2" >&2; exit 2; }

if [ "$(id -u)" = 0 ] && [ "${SKIP_SETUP:-0}" != 1 ]; then bash scripts/setup.sh; fi
source scripts/lib/cluster.sh
source scripts/lib/private.sh
source bench/common.sh

bench_workdir ab

declare -A bin
for t in old new; do
    mkdir "$work/src-$t"
    git archive "${rev[$t]}" Makefile queue.control src | tar -C "$work/src-$t" -xf -
    echo "ab: building $t (${rev[$t]})"
    private_install "$work/root-$t" "$work/src-$t" "$work/build-$t.log"
    bin[$t]=$PRIVATE_BIN
done
if ! diff -q <(cat "$work"/root-old.build/queue--*.sql) <(cat "$work"/root-new.build/queue--*.sql) >/dev/null; then
    echo "ab: ${rev[old]} and ${rev[new]} install different SQL; this compares libraries on one schema" >&2
    exit 2
fi
chmod -R a+rX "$work"

# The cluster, made and first run by OLD's copy, then by either.
PATH="${bin[old]}:$PATH" cluster_start ab 5481 5489 "${bench_settings[@]}"
serve() {
    as_server_user "${bin[$1]}/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" \
        -w -t 60 start >/dev/null
}
halt() { as_server_user "${bin[$1]}/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null; }

bench_schema
halt old
echo "ab: PostgreSQL in $CLUSTER_DIR, port $CLUSTER_PORT; $(settings_text)"
echo "ab: old ${rev[old]}, new ${rev[new]}; $rounds round(s), $duration s per run, $clients clients"

# The backlog of a drain, for both systems.
seed() { reset_tables; preload queue "$backlog"; preload baseline "$backlog"; }
# Jobs in the queue's tables and the baseline's, as each workload counts them.
queue_count() {
    case "$1" in enqueue*) q "SELECT count(*) FROM queue.job" ;; *) q "SELECT count(*) FROM queue.job_archive" ;; esac
}
naive_count() { q "SELECT count(*) FROM bench_naive"; }
bench() { pgbench -n -M prepared -c "$clients" -j "$clients" -T "$duration" "$@" >>"$work/pgbench.log" 2>&1; }

results=$work/results
for ((r = 1; r <= rounds; r++)); do
    if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
    for t in $order; do
        serve "$t"
        for w in ${workloads//,/ }; do
            case "$w" in
                enqueue_payloads) reset_tables; base=baseline_enqueue_batch.sql
                          extra=() ;;
                enqueue*) reset_tables; base=baseline_$w.sql
                          extra=() ;;
                complete_and_claim_*) seed; base=baseline_claim_delete_${w##*_}.sql
                          extra=(-D 'ids={}' -D 'tokens={}') ;;
            esac
            q CHECKPOINT
            before=$(queue_count "$w")
            bench "${extra[@]}" -f "bench/$w.sql"
            queue_jobs=$(( $(queue_count "$w") - before ))
            before=$(naive_count)
            bench -f "bench/$base"
            naive_jobs=$(( $(naive_count) - before ))
            [ "${w#enqueue}" != "$w" ] || naive_jobs=$(( -naive_jobs ))
            dry=
            if [ "${w#enqueue}" = "$w" ] &&
               [ "$(q "SELECT (SELECT count(*) FROM queue.job) * (SELECT count(*) FROM bench_naive)")" = 0 ]; then
                dry="   ran dry: raise --backlog"
            fi
            echo "$r $t $w $queue_jobs $naive_jobs" >>"$results"
            awk -v r="$r" -v t="$t" -v w="$w" -v qj="$queue_jobs" -v nj="$naive_jobs" -v d="$duration" \
                -v dry="$dry" \
                'BEGIN { printf "ab: round %d %-3s %-22s queue %9.0f jobs/s   baseline %9.0f jobs/s   %.3f%s\n",
                         r, t, w, qj / d, nj / d, qj / nj, dry }'
        done
        halt "$t"
    done
done

echo
echo "workload               old jobs/s   new jobs/s   new/old   old/baseline   new/baseline"
awk -v d="$duration" '
    { k = $3; n[k, $2]++; q[k, $2] += $4 / d; rb[k, $2] += $4 / $5; seen[k] = 1 }
    END {
        for (k in seen)
            printf "%-22s %11.0f  %11.0f   %7.3f   %12.3f   %12.3f\n", k,
                q[k, "old"] / n[k, "old"], q[k, "new"] / n[k, "new"],
                (q[k, "new"] / n[k, "new"]) / (q[k, "old"] / n[k, "old"]),
                rb[k, "old"] / n[k, "old"], rb[k, "new"] / n[k, "new"]
    }' "$results" | sort
