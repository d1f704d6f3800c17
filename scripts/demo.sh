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
# and their redrive, lease fencing and job inspection; then a claim that
# waits for work, the transactional outbox relayed by the background worker
# (queue.databases = 'demo') into an ordered and a plain queue, a saga with
# compensation, and the monitoring views.  It takes about twenty seconds,
# then stops the server and removes the dir.
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
        echo "    psql -h $CLUSTER_DIR -p $CLUSTER_PORT -U postgres -d demo"
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
# queue.databases: the databases whose background worker relays published
# events, expires leases and prunes; naptime: how often it does maintenance.
cluster_start demo 5477 5479 "queue.databases = 'demo'" "queue.naptime = '200ms'" ||
    fail "could not start the server"
say "PostgreSQL $(val 'SHOW server_version') running as $PG_USER in $CLUSTER_DIR (port $CLUSTER_PORT, socket only)"
say "with shared_preload_libraries = '$(val 'SHOW shared_preload_libraries')',"
say "queue.databases = '$(val 'SHOW queue.databases')' and queue.naptime = '$(val 'SHOW queue.naptime')'."
say "The database 'demo' gets its background worker once it exists (a reload tells the launcher):"
sql <<'SQL'
CREATE DATABASE demo;
SELECT pg_reload_conf();
SQL
export PGDATABASE=demo
sql <<'SQL'
CREATE EXTENSION queue;
SQL
for _ in $(seq 100); do
    [ "$(val "SELECT state FROM queue.workers WHERE database = 'demo'")" = idle ] && break
    sleep 0.1
done
sql <<'SQL'
SELECT database, pid IS NOT NULL AS running, state FROM queue.workers;
SQL
[ "$(val "SELECT state FROM queue.workers WHERE database = 'demo'")" = idle ] ||
    fail "the background worker of database demo did not start"

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

# --- waiting for work -----------------------------------------------------
section "Waiting for work: a claim woken by the producer's commit"
say "An idle worker claims with wait => '10 seconds'.  It does not poll: it sleeps until a"
say "commit gives its queue work, and the commit itself wakes it."
sql <<'SQL'
SELECT queue.create_queue('thumbnails');
SQL
waited=$(mktemp /tmp/queue-demo-wait.XXXXXX)
val "SELECT job_id || '|' || (payload->>'image') || '|' || extract(epoch FROM statement_timestamp())
            || '|' || extract(epoch FROM clock_timestamp())
       FROM queue.claim('thumbnails', 'thumbnailer-1', wait => '10 seconds')" >"$waited" &
worker_pids+=($!)
for _ in $(seq 100); do
    [ "$(val "SELECT waiting_claims FROM queue.queue_stats WHERE queue = 'thumbnails'")" = 1 ] && break
    sleep 0.05
done
say "thumbnailer-1 is asleep in its claim (a backend waiting on the Extension wait event):"
sql <<'SQL'
SELECT queue, ready, waiting_claims FROM queue.queue_stats WHERE queue = 'thumbnails';
SELECT wait_event_type, wait_event, state, left(regexp_replace(query, '\s+', ' ', 'g'), 60) AS query
  FROM pg_stat_activity WHERE query LIKE '%thumbnailer-1%' AND pid <> pg_backend_pid();
SQL
sleep 1
say "One second later a producer enqueues a job and commits:"
produce="BEGIN;
SELECT queue.enqueue('thumbnails', '{\"image\": \"cat.jpg\", \"sizes\": [64, 256]}');
SELECT extract(epoch FROM clock_timestamp());   -- just before COMMIT is sent
COMMIT;"
printf '%s\n' "$produce" | sed 's/^/   /'
out=$(printf '%s\n' "$produce" | psql -X -q -At -v ON_ERROR_STOP=1) || fail "the producer failed"
thumb=$(sed -n 1p <<<"$out")
commit_sent=$(sed -n 2p <<<"$out")
wait "${worker_pids[-1]}" || fail "the waiting claim failed"
unset 'worker_pids[-1]'
IFS='|' read -r id image claim_started claim_returned <"$waited"
rm -f "$waited"
[ "$id" = "$thumb" ] || fail "the waiting claim should have returned job $thumb, got '$id'"
read -r slept woke_ms < <(awk -v s="$claim_started" -v r="$claim_returned" -v c="$commit_sent" \
    'BEGIN { printf "%.2f %.1f\n", r - s, (r - c) * 1000 }')
say "thumbnailer-1's claim returned job $id ($image) after sleeping ${slept} s in all:"
say "${woke_ms} ms after the producer sent COMMIT (the commit included)."
awk -v ms="$woke_ms" 'BEGIN { exit !(ms < 1000) }' ||
    fail "the waiting claim took ${woke_ms} ms to wake (expected well under a second)"
token=$(val "SELECT lease_token FROM queue.job WHERE id = $id")
val "SELECT queue.complete($id, '$token', '{\"thumbnails\": 2}')" >/dev/null

# --- the transactional outbox ---------------------------------------------
section "Transactional outbox: events commit with the business transaction"
say "An order service announces each order on the topic 'orders'.  billing must handle a"
say "customer's orders one at a time, in order: an ordered queue (FIFO per group key).  email"
say "need not.  Both subscribe to the topic; each event becomes one job in each queue."
sql <<'SQL'
CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL);
SELECT queue.create_queue('billing', ordered => true);
SELECT queue.create_queue('email');
SELECT queue.create_topic('orders');
SELECT queue.subscribe('orders', 'billing') AS billing, queue.subscribe('orders', 'email') AS email;
SQL
say "The business transaction: the order row and its event (keyed by customer) commit together."
sql <<'SQL'
BEGIN;
INSERT INTO orders VALUES (1001, 'cust-42', 99.50);
SELECT queue.publish('orders', '{"order_id": 1001, "customer": "cust-42", "total": 99.50}', key => 'cust-42');
COMMIT;
SQL
say "A transaction that rolls back publishes nothing: no order row, no event."
sql <<'SQL'
BEGIN;
INSERT INTO orders VALUES (1002, 'cust-9', 1.00);
SELECT queue.publish('orders', '{"order_id": 1002, "customer": "cust-9", "total": 1.00}', key => 'cust-9');
ROLLBACK;
SQL
say "Two more: cust-42's second order, and one for cust-7."
sql <<'SQL'
BEGIN;
INSERT INTO orders VALUES (1003, 'cust-42', 12.00);
SELECT queue.publish('orders', '{"order_id": 1003, "customer": "cust-42", "total": 12.00}', key => 'cust-42');
COMMIT;
BEGIN;
INSERT INTO orders VALUES (1004, 'cust-7', 5.00);
SELECT queue.publish('orders', '{"order_id": 1004, "customer": "cust-7", "total": 5.00}', key => 'cust-7');
COMMIT;
SQL
for _ in $(seq 100); do
    [ "$(val "SELECT count(*) FILTER (WHERE state = 'relayed') || '/' || count(*) FROM queue.events")" = 3/3 ] && break
    sleep 0.05
done
[ "$(val "SELECT count(*) FILTER (WHERE state = 'relayed') || '/' || count(*) FROM queue.events")" = 3/3 ] ||
    fail "the background worker did not relay the three events"
say "Nobody called queue.relay(): the background worker, woken by each publishing commit,"
say "relayed the three committed events within milliseconds; the rolled-back one never existed."
sql <<'SQL'
SELECT id, topic, key, state, payload->>'order_id' AS order_id,
       round(extract(epoch FROM finished_at - published_at) * 1000, 1) AS relayed_after_ms
  FROM queue.events ORDER BY id;
SELECT id, customer, total FROM orders ORDER BY id;
SQL
say "Each queue got one job per event; headers->'event' says which event it came from."
say "In billing, cust-42's second order is 'blocked' behind its first (the group's head):"
sql <<'SQL'
SELECT id, queue, state, group_key, payload->>'order_id' AS order_id, headers->'event' AS event
  FROM queue.jobs WHERE queue IN ('billing', 'email') ORDER BY queue, id;
SQL
[ "$(val "SELECT state FROM queue.jobs WHERE queue = 'billing' AND payload->>'order_id' = '1003'")" = blocked ] ||
    fail "order 1003 should wait blocked behind order 1001 in billing"

# claim_all QUEUE WORKER: claims up to 10 jobs; prints "job_id|token|order_id" lines.
claim_all() {
    val "SELECT job_id || '|' || lease_token || '|' || (payload->>'order_id')
           FROM queue.claim('$1', '$2', batch_size => 10)"
}
# complete_all QUEUE "claimed lines": completes them, one transaction each.
complete_all() {
    local q=$1 id token order
    while IFS='|' read -r id token order; do
        [ -n "$id" ] || continue
        val "SELECT queue.complete($id, '$token')" >/dev/null
        printf '   %-8s job %-3s order %s completed\n' "$q" "$id" "$order"
    done <<<"$2"
}
claimed=$(claim_all billing billing-1)
say "billing-1 claims up to 10 billing jobs and gets orders $(cut -d'|' -f3 <<<"$claimed" | paste -sd' '):"
say "cust-42's second order stays blocked while its first is running."
[ "$(cut -d'|' -f3 <<<"$claimed" | sort | paste -sd,)" = 1001,1004 ] ||
    fail "billing-1 should have claimed orders 1001 and 1004, got: $claimed"
sql <<'SQL'
SELECT queue, group_key, head_job_id, head_state, reason, blocked_jobs FROM queue.blocked_groups;
SQL
say "Billing invoices both orders and completes their jobs; completing 1001 makes 1003 the head:"
complete_all billing "$claimed"
claimed=$(claim_all billing billing-1)
[ "$(cut -d'|' -f3 <<<"$claimed")" = 1003 ] || fail "billing-1 should now claim order 1003, got: $claimed"
say "billing-1 claims again and now gets order 1003:"
complete_all billing "$claimed"
say "email is not ordered: its worker gets all three at once."
complete_all email "$(claim_all email email-1)"
sql <<'SQL'
SELECT topic, subscription, pending, oldest_pending_age, relayed_last_minute, dead FROM queue.topic_stats;
SQL
[ "$(val "SELECT count(*) FROM queue.jobs WHERE queue IN ('billing', 'email') AND state = 'completed'")" = 6 ] ||
    fail "the six order jobs should be completed"

# --- sagas ----------------------------------------------------------------
section "A saga with compensation: place_order = reserve -> charge -> ship"
say "Each step runs as a job in its own queue.  reserve and charge name the queue of their"
say "compensation (release the stock, refund); ship has none.  A step's completion moves the"
say "saga on in the same transaction; a step that fails for good unwinds the completed steps."
sql <<'SQL'
SELECT count(queue.create_queue(q)) AS queues
  FROM unnest(ARRAY['inventory', 'inventory_release', 'payments', 'payments_refund', 'shipping']) q;
SELECT queue.define_saga('place_order', '[
    {"name": "reserve", "queue": "inventory", "compensation_queue": "inventory_release"},
    {"name": "charge",  "queue": "payments",  "compensation_queue": "payments_refund", "max_attempts": 3},
    {"name": "ship",    "queue": "shipping"}]') AS version;
SQL
# step QUEUE complete RESULT | step QUEUE fail ERROR: a step worker claims the
# queue's next job and completes it with RESULT, or fails it for good.
step() {
    local q=$1 how=$2 arg=$3 row id token saga name kind
    row=$(val "SELECT job_id || '|' || lease_token || '|' || (payload->>'saga_id') || '|' || (payload->>'step')
                      || '|' || (headers->'saga'->>'kind')
                 FROM queue.claim('$q', '$q-worker', wait => '2 seconds')")
    [ -n "$row" ] || fail "no job in queue $q"
    IFS='|' read -r id token saga name kind <<<"$row"
    if [ "$how" = complete ]; then
        val "SELECT queue.complete($id, '$token', '$arg')" >/dev/null
        printf '   %-17s saga %s  %-12s %-7s job %-3s completed  %s\n' "$q" "$saga" "$kind" "$name" "$id" "$arg"
    else
        val "SELECT queue.fail($id, '$token', '$arg', permanent => true)" >/dev/null
        printf '   %-17s saga %s  %-12s %-7s job %-3s FAILED     %s (permanent)\n' "$q" "$saga" "$kind" "$name" "$id" "$arg"
    fi
}
good=$(val "SELECT queue.start_saga('place_order', '{\"order_id\": 1001, \"sku\": \"book-17\", \"amount\": 99.50}')")
say "Saga $good (order 1001) started; its first step is a job in 'inventory', whose payload"
say "carries the saga's input and the results of the steps so far (context):"
sql <<'SQL'
SELECT id, queue, state, payload FROM queue.jobs WHERE queue = 'inventory' AND state = 'ready';
SQL
say "The step workers run it to the end:"
step inventory complete '{"reservation": "R-1"}'
step payments complete '{"charge_id": "ch_1"}'
step shipping complete '{"tracking": "TRK-1"}'
bad=$(val "SELECT queue.start_saga('place_order', '{\"order_id\": 1005, \"sku\": \"lamp-3\", \"amount\": 250}')")
say "Saga $bad (order 1005): the stock is reserved, then the card is declined, a permanent"
say "failure: the charge step is dead, and reserve is compensated (its stock released)."
step inventory complete '{"reservation": "R-2"}'
step payments fail 'card declined'
step inventory_release complete '{"released": "R-2"}'
sql <<SQL
SELECT id, status, current_step, compensating_step, context, failure->>'error' AS failure
  FROM queue.sagas ORDER BY id;
SELECT step, kind, event, job_id, detail FROM queue.saga_timeline($good);
SELECT step, kind, event, job_id, detail FROM queue.saga_timeline($bad);
SQL
[ "$(val "SELECT string_agg(status, ',' ORDER BY id) FROM queue.sagas")" = completed,compensated ] ||
    fail "saga $good should be completed and saga $bad compensated"
[ "$(val "SELECT count(*) FROM queue.jobs WHERE queue = 'payments_refund'")" = 0 ] ||
    fail "nothing was charged in saga $bad, so nothing should be refunded"

# --- monitoring -----------------------------------------------------------
section "Monitoring"
say "queue.queue_stats: jobs by state per queue, throughput in the last minute, waiting claims."
sql <<'SQL'
SELECT queue, ready, scheduled, running, blocked, completed, dead,
       completed_last_minute AS done_1min, failed_last_minute AS failed_1min, waiting_claims
  FROM queue.queue_stats ORDER BY queue;
SQL
say "queue.workers: the background worker of database demo and what it has done."
sql <<'SQL'
SELECT database, pid IS NOT NULL AS running, state, events_relayed, leases_expired,
       jobs_pruned, events_pruned, errors
  FROM queue.workers;
SQL
[ "$(val "SELECT events_relayed >= 3 AND errors = 0 FROM queue.workers WHERE database = 'demo'")" = t ] ||
    fail "the worker should have relayed the three events without errors"
echo
echo "demo: done in $((SECONDS - started)) s"
