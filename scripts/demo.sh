#!/usr/bin/env bash
# A guided tour of the queue extension on a throwaway server.  On a fresh
# Debian 12 machine, from a clean clone, as root:
#
#     bash scripts/demo.sh
#
# It runs scripts/setup.sh (packages, build, install), starts a private
# PostgreSQL 15 in a new temp dir (as the user postgres, unix socket only,
# port 5477 or the next free one), creates the extension and walks through
# queues, producers, concurrent workers, retries with backoff, dead letters
# and their redrive, lease fencing and job inspection.  It takes about
# twenty seconds, then stops the server and removes the dir.
#
#     KEEP=1 bash scripts/demo.sh     # leave the server running to explore
#
# Exits non-zero if any step fails.  Not root: setup is skipped (the
# extension must already be installed) and the server runs as you.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
started=$SECONDS

if [ "$(id -u)" = 0 ]; then
    bash scripts/setup.sh
else
    echo "demo: not root, skipping scripts/setup.sh (the extension must be installed)"
fi
source scripts/lib/cluster.sh

worker_pids=()
finish() {
    local rc=$?
    for pid in "${worker_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ] && [ -n "$CLUSTER_DIR" ]; then
        echo
        echo "KEEP=1: the server is still running.  Connect with"
        echo "    psql -h $CLUSTER_DIR -p $CLUSTER_PORT -U postgres"
        echo "and stop it with"
        echo "    runuser -u $PG_USER -- $PG_BIN/pg_ctl -D $CLUSTER_DIR/data stop && rm -rf $CLUSTER_DIR"
    else
        cluster_stop
    fi
    if [ $rc -ne 0 ]; then
        echo "demo: FAILED (exit $rc)" >&2
    fi
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- presentation helpers -------------------------------------------------
bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)
[ -t 1 ] || { bold=; plain=; }
step=0
section() { step=$((step + 1)); printf '\n%s== %d. %s%s\n' "$bold" "$step" "$1" "$plain"; }
say() { printf -- '-- %s\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

# sql: runs the SQL on stdin, echoing each statement before its result.
sql() { psql -X -q -e -v ON_ERROR_STOP=1 -P footer=off; }
# val: the bare result of one query (fields separated by |).
val() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
# wait_ready JOB: sleeps until the job is claimable again (its backoff is over).
wait_ready() {
    local secs
    secs=$(val "SELECT greatest(0, round(extract(epoch FROM run_at - clock_timestamp())::numeric, 2))
                  FROM queue.get_job($1)")
    say "(waiting ${secs}s for job $1's backoff to run out)"
    sleep "$secs"
    until [ "$(val "SELECT state FROM queue.get_job($1)")" = ready ]; do sleep 0.05; done
}

# --- the server -----------------------------------------------------------
section "A private PostgreSQL server"
cluster_start demo 5477 5479 || fail "could not start the server"
say "PostgreSQL $(val 'SHOW server_version') running as $PG_USER in $CLUSTER_DIR (port $CLUSTER_PORT, socket only)"
say "with shared_preload_libraries = '$(val 'SHOW shared_preload_libraries')'"
sql <<'SQL'
CREATE EXTENSION queue;
SQL

# --- queues ---------------------------------------------------------------
section "Queues and their settings"
say "'emails': 3 attempts, exponential backoff from 1 s (1 s, 2 s, 4 s ... capped at 10 min)."
say "'reports': slow jobs, so a longer lease and a fixed 30 s between retries."
sql <<'SQL'
SELECT queue.create_queue('emails', max_attempts => 3,
         retry_policy => '{"backoff": "exponential", "delay": 1, "factor": 2, "max_delay": 600}');
SELECT queue.create_queue('reports', lease_timeout => '2 minutes',
         retry_policy => '{"backoff": "fixed", "delay": 30}');
SELECT name, max_attempts, lease_timeout, retry_policy FROM queue.list_queues();
SQL
say "A policy can be tried out before any job fails:"
sql <<'SQL'
SELECT n AS after_attempt,
       queue.backoff_delay((SELECT retry_policy FROM queue.list_queues() WHERE name = 'emails'), n) AS waits
  FROM generate_series(1, 4) n;
SQL

# --- producers ------------------------------------------------------------
section "Producers enqueue jobs"
say "One job; enqueue returns its id."
sql <<'SQL'
SELECT queue.enqueue('emails', '{"to": "alice@example.com", "template": "welcome"}');
SQL
say "A batch in one call: the newsletter for eight subscribers (ids in input order)."
sql <<'SQL'
SELECT * FROM queue.enqueue_many('emails',
         (SELECT jsonb_agg(jsonb_build_object('payload',
                   jsonb_build_object('to', 'subscriber' || i || '@example.com', 'template', 'newsletter')))
            FROM generate_series(1, 8) i));
SQL
say "A scheduled job: the trial-ending reminder goes out in an hour, not now."
sql <<'SQL'
SELECT queue.enqueue('emails', '{"to": "bob@example.com", "template": "trial-ending"}', delay => '1 hour');
SQL
say "An urgent one: priority 10 jumps the line although it came last."
sql <<'SQL'
SELECT queue.enqueue('emails', '{"to": "carol@example.com", "template": "password-reset"}', priority => 10);
SQL
say "Deduplication: the same monthly report asked for twice is one job (same id)."
sql <<'SQL'
SELECT queue.enqueue('reports', '{"report": "monthly-sales", "month": "2024-05"}', dedup_key => 'monthly-sales:2024-05') AS first,
       queue.enqueue('reports', '{"report": "monthly-sales", "month": "2024-05"}', dedup_key => 'monthly-sales:2024-05') AS again;
SELECT * FROM queue.enqueue_many('reports',
         '[{"payload": {"report": "inventory"}}, {"payload": {"report": "churn"}}]');
SQL
[ "$(val "SELECT count(*) FROM queue.jobs WHERE dedup_key = 'monthly-sales:2024-05'")" = 1 ] ||
    fail "deduplication did not give one job"
say "What waits now, in claim order (priority, then run_at):"
sql <<'SQL'
SELECT id, queue, state, priority, payload->>'to' AS "to", payload->>'template' AS template,
       payload->>'report' AS report, date_trunc('second', run_at - now()) AS due_in
  FROM queue.jobs ORDER BY queue, state, priority DESC, run_at, id;
SQL

# --- workers --------------------------------------------------------------
section "Three workers drain both queues concurrently"
say "Each worker loops: claim one job (transaction 1, which hands out a lease token),"
say "do the work outside any transaction, then complete it with the token (transaction 2)."
say "Claims use FOR UPDATE SKIP LOCKED, so workers never wait for or get each other's jobs."
worker() {
    local name=$1 idle q row id token what
    while :; do
        idle=1
        for q in emails reports; do
            row=$(val "SELECT job_id || '|' || lease_token || '|' || coalesce(payload->>'template' || ' -> ' || (payload->>'to'), payload->>'report')
                         FROM queue.claim('$q', '$name')")
            [ -n "$row" ] || continue
            idle=0
            IFS='|' read -r id token what <<<"$row"
            if [ "$q" = emails ]; then
                sleep 0.2       # talk to the mail server
                val "SELECT queue.complete($id, '$token', jsonb_build_object('message_id', '<$id@mail.example.com>'))" >/dev/null
            else
                sleep 0.5       # crunch numbers
                val "SELECT queue.complete($id, '$token', '{\"rows\": 1234}')" >/dev/null
            fi
            printf '   %-9s %-8s job %-3s %-40s completed\n' "$name" "$q" "$id" "$what"
        done
        [ $idle = 0 ] || return 0
    done
}
for w in 1 2 3; do
    worker "worker-$w" &
    worker_pids+=($!)
done
sleep 0.3
say "Meanwhile, the leases they hold:"
sql <<'SQL'
SELECT id, queue, worker, attempts, date_trunc('second', lease_expires_at - clock_timestamp()) AS lease_left
  FROM queue.jobs WHERE state = 'running' ORDER BY id;
SQL
for pid in "${worker_pids[@]}"; do
    wait "$pid" || fail "a worker failed"
done
worker_pids=()
say "All ready jobs are done; the scheduled reminder still waits for its hour."
sql <<'SQL'
SELECT worker, count(*) AS completed FROM queue.jobs WHERE state = 'completed' GROUP BY worker ORDER BY worker;
SQL

# --- retries, dead letters, redrive ---------------------------------------
section "Failures: retry with backoff, dead letter, redrive"
bounce=$(val "SELECT queue.enqueue('emails', '{\"to\": \"dave@example.invalid\", \"template\": \"welcome\"}')")
say "Job $bounce is an email to a mailbox that is down.  Each attempt fails:"
for attempt in 1 2 3; do
    row=$(val "SELECT job_id || '|' || lease_token FROM queue.claim('emails', 'worker-1')")
    IFS='|' read -r id token <<<"$row"
    [ "$id" = "$bounce" ] || fail "expected to claim job $bounce, got '$id'"
    say "worker-1 claims job $id (attempt $attempt of 3) and the mail server answers 451:"
    sql <<SQL
SELECT queue.fail($id, '$token', 'SMTP 451: mailbox temporarily unavailable (attempt $attempt)') AS outcome;
SELECT id, state, attempts, max_attempts, to_char(run_at, 'HH24:MI:SS.MS') AS run_at,
       date_trunc('second', run_at - clock_timestamp() + interval '0.5 s') AS retry_in, last_error
  FROM queue.get_job($id);
SQL
    [ "$attempt" = 3 ] || wait_ready "$bounce"
done
[ "$(val "SELECT state FROM queue.get_job($bounce)")" = dead ] || fail "job $bounce should be dead"
say "Out of attempts: the job is a dead letter, with every error it met:"
sql <<SQL
SELECT id, attempts, finished_at IS NOT NULL AS finished FROM queue.list_dead('emails');
SELECT e->>'attempt' AS attempt, e->>'worker' AS worker, e->>'error' AS error
  FROM queue.get_job($bounce) j, jsonb_array_elements(j.errors) e;
SQL
say "The mailbox is back: redrive puts the job back as ready, attempts from zero, history kept."
sql <<SQL
SELECT queue.redrive('emails', ARRAY[$bounce]) AS redriven;
SELECT id, state, attempts, jsonb_array_length(errors) AS past_errors FROM queue.get_job($bounce);
SQL
row=$(val "SELECT job_id || '|' || lease_token FROM queue.claim('emails', 'worker-2')")
IFS='|' read -r id token <<<"$row"
[ "$id" = "$bounce" ] || fail "expected to claim job $bounce after the redrive, got '$id'"
say "worker-2 claims it and this time the email goes out:"
sql <<SQL
SELECT queue.complete($id, '$token', '{"message_id": "<$id@mail.example.com>"}');
SELECT id, state, attempts, result FROM queue.get_job($id);
SQL

# --- fencing --------------------------------------------------------------
section "Fencing: a worker whose lease expired cannot settle the job"
sql <<'SQL'
CREATE TABLE report_files (job_id bigint, written_by text, written_at timestamptz DEFAULT clock_timestamp());
SQL
report=$(val "SELECT queue.enqueue('reports', '{\"report\": \"quarterly-sales\"}')")
row=$(val "SELECT job_id || '|' || lease_token FROM queue.claim('reports', 'worker-A', lease => '1 second')")
IFS='|' read -r id token_a <<<"$row"
[ "$id" = "$report" ] || fail "expected to claim job $report, got '$id'"
say "worker-A claimed job $report with a 1 s lease (token $token_a) ... and stalls (a long GC pause)."
sleep 1.2
say "The lease has expired, so the job is claimable again; worker-B takes it (attempt 2, a new token):"
row=$(val "SELECT job_id || '|' || lease_token FROM queue.claim('reports', 'worker-B')")
IFS='|' read -r id token_b <<<"$row"
[ "$id" = "$report" ] || fail "expected worker-B to claim job $report, got '$id'"
sql <<SQL
SELECT id, state, worker, attempts FROM queue.get_job($report);
SQL
say "worker-A wakes up and, in one transaction, writes its file and completes with its old token:"
out=$(psql -X -q -e -v ON_ERROR_STOP=1 2>&1 <<SQL
\\set VERBOSITY verbose
BEGIN;
INSERT INTO report_files (job_id, written_by) VALUES ($report, 'worker-A');
SELECT queue.complete($report, '$token_a');
COMMIT;
SQL
) && fail "the stale token was accepted:
$out"
printf '%s\n' "$out" | grep -v '^LOCATION:' | sed 's/^/   /'
grep -q 'QU001' <<<"$out" || fail "expected SQLSTATE QU001, got:
$out"
say "Rejected with SQLSTATE QU001; worker-A's transaction rolled back, its file write with it."
say "worker-B finishes normally:"
sql <<SQL
BEGIN;
INSERT INTO report_files (job_id, written_by) VALUES ($report, 'worker-B');
SELECT queue.complete($report, '$token_b', '{"file": "s3://reports/quarterly-sales.pdf"}');
COMMIT;
SELECT job_id, written_by FROM report_files;
SQL
[ "$(val "SELECT string_agg(written_by, ',') FROM report_files")" = worker-B ] ||
    fail "report_files should hold worker-B's write only"

# --- inspection -----------------------------------------------------------
section "Inspecting jobs"
say "One job, whatever its state (get_job):"
sql <<SQL
\\x on
SELECT * FROM queue.get_job($report);
\\x off
SQL
say "A queue's jobs in one state, a page at a time (list_jobs):"
sql <<'SQL'
SELECT id, state, worker, payload->>'to' AS "to", result->>'message_id' AS message_id
  FROM queue.list_jobs('emails', 'completed', page_size => 5);
SELECT id, state, payload->>'to' AS "to", date_trunc('minute', run_at - now() + interval '30 s') AS due_in
  FROM queue.list_jobs('emails', 'scheduled');
SQL

# --- summary --------------------------------------------------------------
section "Summary"
sql <<'SQL'
SELECT queue,
       count(*) FILTER (WHERE state = 'ready') AS ready,
       count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
       count(*) FILTER (WHERE state = 'retrying') AS retrying,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       count(*) AS total
  FROM queue.jobs GROUP BY queue ORDER BY queue;
SQL
[ "$(val "SELECT count(*) FROM queue.jobs WHERE state NOT IN ('completed', 'scheduled')")" = 0 ] ||
    fail "every job but the scheduled one should be completed"
echo
echo "demo: done in $((SECONDS - started)) s"
