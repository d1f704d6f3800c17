--
-- 11_ordered: ordered queues (FIFO per group key).  In a queue created with
-- ordered => true, the jobs of one group run one at a time in enqueue
-- order: the group's head is claimable, the others are 'blocked' until the
-- head finishes (completed, dead, cancelled, deleted).
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 1100001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 1100000);
SELECT queue.create_queue('q11', ordered => true, max_attempts => 2,
                          retry_policy => '{"backoff": "fixed", "delay": 3600}') > 0 AS created;
SELECT queue.create_queue('q11_plain') > 0 AS created;
SELECT name, ordered FROM queue.list_queues() WHERE name LIKE 'q11%';
-- ordered must not be null
SELECT queue.create_queue('q11_null', ordered => NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE

-- group_key is checked like a dedup key: 1 to 512 bytes.
SELECT queue.enqueue('q11', '{}', group_key => '');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue('q11', '{}', group_key => repeat('g', 513));
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue_many('q11', '[{"payload": {}, "group_key": 7}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue_many('q11', '[{"payload": {}, "group_key": ""}]');
SELECT count(*) AS jobs FROM queue.jobs WHERE queue = 'q11';

--
-- The first job of a group is its head; the later ones are blocked.  Jobs
-- of other groups, and jobs without a group, are not held up.
--
SELECT queue.enqueue('q11', '{"n": 1}', group_key => 'a');
SELECT queue.enqueue('q11', '{"n": 2}', group_key => 'a');
SELECT queue.enqueue('q11', '{"n": 3}', group_key => 'b');
SELECT queue.enqueue('q11', '{"n": 4}');
SELECT queue.enqueue('q11', '{"n": 5}', group_key => 'a', priority => 100);
SELECT id, state, payload, group_key, priority FROM queue.list_jobs('q11') ORDER BY id;
SELECT id FROM queue.list_jobs('q11', state => 'blocked');
SELECT state, group_key FROM queue.get_job(1100005);
-- a blocked job has never had a lease: a token for it is refused, saying so
SELECT queue.complete(1100005, '00000000-0000-0000-0000-000000000000');
SELECT ready, scheduled, retrying, running, blocked FROM queue.queue_stats WHERE queue = 'q11';
SELECT queue, group_key, head_job_id, head_state, reason, blocked_jobs,
       oldest_blocked_at IS NOT NULL AS has_oldest
  FROM queue.blocked_groups WHERE queue LIKE 'q11%' ORDER BY queue, group_key;

-- A claim takes the heads and the job without a group, never a blocked
-- job (not even one of higher priority).
CREATE TEMP TABLE l AS SELECT * FROM queue.claim('q11', 'w', 10);
SELECT job_id, payload FROM l ORDER BY job_id;
SELECT count(*) AS claimed FROM queue.claim('q11', 'w', 10);
SELECT queue, group_key, head_job_id, head_state, reason, blocked_jobs
  FROM queue.blocked_groups WHERE queue = 'q11' ORDER BY group_key;

-- The head completes: the next job of its group (the smallest id) is
-- promoted and can be claimed; the one after it stays blocked.
SELECT queue.complete(job_id, lease_token) FROM l WHERE job_id = 1100001;
SELECT id, state FROM queue.list_jobs('q11') ORDER BY id;
-- A job that completes and has no group promotes nothing.
SELECT queue.complete(job_id, lease_token) FROM l WHERE job_id = 1100004;
SELECT ready, running, blocked FROM queue.queue_stats WHERE queue = 'q11';
DELETE FROM l;
INSERT INTO l SELECT * FROM queue.claim('q11', 'w', 10);
SELECT job_id, payload, attempt FROM l ORDER BY job_id;

-- The head fails and waits to retry: the group stays blocked.
SELECT queue.fail(job_id, lease_token, 'try again') FROM l WHERE job_id = 1100002;
SELECT id, state FROM queue.list_jobs('q11') ORDER BY id;
SELECT queue, group_key, head_job_id, head_state, reason, blocked_jobs
  FROM queue.blocked_groups WHERE queue = 'q11' ORDER BY group_key;
SELECT count(*) AS claimed FROM queue.claim('q11', 'w', 10);
-- A head scheduled for later holds its group too.
SELECT queue.enqueue('q11', '{"n": 6}', group_key => 'later', delay => '1 hour');
SELECT queue.enqueue('q11', '{"n": 7}', group_key => 'later');
SELECT queue, group_key, head_job_id, head_state, reason, blocked_jobs
  FROM queue.blocked_groups WHERE queue = 'q11' ORDER BY group_key;
-- Released, a head is still the head.
SELECT queue.reschedule_job(1100002, now() - interval '1 second');
DELETE FROM l;
INSERT INTO l SELECT * FROM queue.claim('q11', 'w', 10);
SELECT job_id, attempt FROM l ORDER BY job_id;
SELECT queue.release(job_id, lease_token) FROM l WHERE job_id = 1100002;
SELECT id, state FROM queue.list_jobs('q11') WHERE group_key = 'a' ORDER BY id;
DELETE FROM l;
INSERT INTO l SELECT * FROM queue.claim('q11', 'w', 10);
SELECT job_id, attempt FROM l ORDER BY job_id;

-- The head dies (a permanent failure): the next job is promoted.
SELECT queue.fail(job_id, lease_token, 'fatal', permanent => true) FROM l WHERE job_id = 1100002;
SELECT id, state FROM queue.list_jobs('q11') WHERE group_key = 'a' ORDER BY id;
SELECT group_key, head_job_id FROM queue.blocked_groups WHERE queue = 'q11' ORDER BY group_key;

--
-- Cancelling or deleting a head that is waiting promotes the next job;
-- cancelling or deleting a blocked job leaves the head alone.
--
SELECT * FROM queue.enqueue_many('q11', '[
  {"payload": {"c": 1}, "group_key": "c"},
  {"payload": {"c": 2}, "group_key": "c"},
  {"payload": {"c": 3}, "group_key": "c"},
  {"payload": {"c": 4}, "group_key": "c"},
  {"payload": {"c": 5}, "group_key": "c"}]');
SELECT queue.cancel_job(1100008);
SELECT id, state FROM queue.jobs WHERE group_key = 'c' ORDER BY id;
SELECT queue.delete_job(1100009);
SELECT id, state FROM queue.jobs WHERE group_key = 'c' ORDER BY id;
SELECT queue.cancel_job(1100012);
SELECT queue.delete_job(1100011);
SELECT id, state FROM queue.jobs WHERE group_key = 'c' ORDER BY id;
-- a running head cannot be cancelled: the group stays blocked
SELECT queue.enqueue('q11', '{"c": 6}', group_key => 'c');
SELECT queue.enqueue('q11', '{"c": 7}', group_key => 'c');
DELETE FROM l;
INSERT INTO l SELECT * FROM queue.claim('q11', 'w', 10);
SELECT job_id, payload FROM l ORDER BY job_id;
SELECT queue.cancel_job(1100010);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.delete_job(1100010);
SELECT id, state FROM queue.jobs WHERE group_key = 'c' ORDER BY id;

--
-- complete_many and fail_many promote the next job of each group.
--
SELECT queue.complete_many(array_agg(job_id ORDER BY job_id), array_agg(lease_token ORDER BY job_id))
  FROM l;
SELECT id, state FROM queue.jobs WHERE queue = 'q11' AND group_key IN ('a', 'c') ORDER BY id;
DELETE FROM l;
INSERT INTO l SELECT * FROM queue.claim('q11', 'w', 10);
SELECT job_id, payload FROM l ORDER BY job_id;
SELECT f.* FROM l, LATERAL queue.fail_many(ARRAY[l.job_id], ARRAY[l.lease_token],
                                           ARRAY['boom'], permanent => true) f
 ORDER BY f.job_id;
SELECT id, state FROM queue.jobs WHERE queue = 'q11' AND group_key = 'c' ORDER BY id;
-- the last job of the group completes: the group is gone
DELETE FROM l;
INSERT INTO l SELECT * FROM queue.claim('q11', 'w', 10);
SELECT job_id, payload FROM l ORDER BY job_id;
SELECT queue.complete(job_id, lease_token) FROM l;
SELECT count(*) AS live_jobs_of_c FROM queue.job WHERE group_key = 'c';
SELECT queue, group_key, head_job_id, head_state, blocked_jobs
  FROM queue.blocked_groups WHERE queue = 'q11' ORDER BY group_key;

--
-- enqueue_many: several jobs of one group in one batch.  The first is the
-- head (when the group has no live job), the others are blocked, in the
-- order of the array.
--
SELECT * FROM queue.enqueue_many('q11', '[
  {"payload": {"d": 1}, "group_key": "d"},
  {"payload": {"e": 1}, "group_key": "e"},
  {"payload": {"d": 2}, "group_key": "d"},
  {"payload": {"x": 1}},
  {"payload": {"d": 3}, "group_key": "d"},
  {"payload": {"n": 8}, "group_key": "later"}]');
SELECT id, state, payload, group_key FROM queue.list_jobs('q11', after_id => 1100014) ORDER BY id;
SELECT ready, scheduled, blocked FROM queue.queue_stats WHERE queue = 'q11';

--
-- Deduplication: a group's first job whose key is held by a live job of
-- another group is not inserted (it gets the holder's id); the next job of
-- its group is not left blocked behind nothing.
--
SELECT queue.enqueue('q11', '{"f": 1}', group_key => 'f', dedup_key => 'k1');
SELECT * FROM queue.enqueue_many('q11', '[
  {"payload": {"g": 1}, "group_key": "g", "dedup_key": "k1"},
  {"payload": {"g": 2}, "group_key": "g"},
  {"payload": {"g": 3}, "group_key": "g"}]');
SELECT id, state, payload, group_key, dedup_key FROM queue.jobs
 WHERE queue = 'q11' AND group_key IN ('f', 'g') ORDER BY id;
-- the same with enqueue: nothing is inserted, the group has no job
SELECT queue.enqueue('q11', '{"h": 1}', group_key => 'h', dedup_key => 'k1');
SELECT count(*) AS jobs_of_h FROM queue.jobs WHERE group_key = 'h';

--
-- An expired lease on the head's last attempt: expire_leases makes it dead
-- and promotes the next job.
--
SELECT queue.create_queue('q11_lease', ordered => true, max_attempts => 1) > 0 AS created;
SELECT count(*) FROM queue.enqueue_many('q11_lease', '[
  {"payload": {"i": 1}, "group_key": "i"},
  {"payload": {"i": 2}, "group_key": "i"}]');
SELECT job_id, payload FROM queue.claim('q11_lease', 'w', 10, lease => '1 millisecond');
SELECT pg_sleep(0.05);
SELECT queue.expire_leases();
SELECT id, state, last_error FROM queue.list_jobs('q11_lease') ORDER BY id;

--
-- Redrive: a dead job of a group with a live head comes back blocked (and
-- takes its place in the group's order: its id); in a group without a live
-- job it is the head again.
--
SELECT id, state FROM queue.jobs WHERE queue = 'q11' AND group_key = 'a' ORDER BY id;
SELECT queue.redrive(1100002);
SELECT id, state, attempts FROM queue.jobs WHERE queue = 'q11' AND group_key = 'a' ORDER BY id;
SELECT queue, group_key, head_job_id, blocked_jobs FROM queue.blocked_groups
 WHERE queue = 'q11' AND group_key = 'a';
SELECT id, state FROM queue.jobs WHERE queue = 'q11_lease' ORDER BY id;
SELECT queue.redrive('q11_lease');
SELECT id, state FROM queue.jobs WHERE queue = 'q11_lease' ORDER BY id;
SELECT queue, group_key, head_job_id, head_state, blocked_jobs
  FROM queue.blocked_groups WHERE queue = 'q11_lease';
-- once the head completes, the redriven job runs
SELECT queue.complete(job_id, lease_token) FROM queue.claim('q11_lease', 'w', 10);
SELECT id, state FROM queue.jobs WHERE queue = 'q11_lease' ORDER BY id;
-- redrive of a job that is not dead
SELECT queue.redrive(1100027);
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- purge_queue deletes blocked jobs too (and leaves running ones).
--
DELETE FROM l;
INSERT INTO l SELECT * FROM queue.claim('q11', 'w', 1);
SELECT job_id, payload FROM l;
SELECT ready, scheduled, running, blocked FROM queue.queue_stats WHERE queue = 'q11';
SELECT queue.purge_queue('q11');
SELECT id, state FROM queue.jobs WHERE queue = 'q11' AND state NOT IN ('completed', 'dead', 'cancelled');
SELECT ready, scheduled, running, blocked FROM queue.queue_stats WHERE queue = 'q11';
SELECT count(*) AS blocked_groups FROM queue.blocked_groups WHERE queue = 'q11';
-- the running head completes: nothing is left to promote
SELECT queue.complete(job_id, lease_token) FROM l;
SELECT count(*) AS live FROM queue.job j JOIN queue.queue q ON q.id = j.queue_id
 WHERE q.name = 'q11';

--
-- In a queue that is not ordered, group_key is stored but does not block.
--
SELECT count(*) FROM queue.enqueue_many('q11_plain', '[
  {"payload": {"p": 1}, "group_key": "a"},
  {"payload": {"p": 2}, "group_key": "a"}]');
SELECT queue.enqueue('q11_plain', '{"p": 3}', group_key => 'a');
SELECT state, payload, group_key FROM queue.jobs WHERE queue = 'q11_plain' AND group_key = 'a'
 ORDER BY id;
SELECT blocked FROM queue.queue_stats WHERE queue = 'q11_plain';
SELECT count(*) AS blocked_groups FROM queue.blocked_groups WHERE queue = 'q11_plain';
SELECT payload FROM queue.claim('q11_plain', 'w', 10) WHERE payload ? 'p' ORDER BY job_id;
-- a group key of 512 bytes is fine
SELECT queue.enqueue('q11_plain', '{}', group_key => repeat('g', 512)) > 0 AS enqueued;
