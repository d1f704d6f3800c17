--
-- 01_queues: creating, listing, altering, pausing, purging and dropping
-- queues, and the checks on queue names and settings.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 100001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 100000);

-- An unknown queue is an error for every function that takes a queue name,
-- even while no queue exists at all.
SELECT queue.alter_queue('q01_none', max_attempts => 3);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.pause_queue('q01_none');
SELECT queue.resume_queue('q01_none');
SELECT queue.purge_queue('q01_none');
SELECT queue.drop_queue('q01_none');
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- create_queue with the defaults: 5 attempts, exponential backoff from 1 s
-- doubling up to an hour without jitter, 30 s leases, completed jobs kept a
-- day and dead letters 30 days.  The stored retry policy is complete.
--
SELECT queue.create_queue('q01_defaults') > 0 AS created;
SELECT name, max_attempts, retry_policy, lease_timeout, retention,
       dead_retention, paused, created_at = updated_at AS never_updated
  FROM queue.list_queues() WHERE name LIKE 'q01%';

-- Every setting given.  A partial retry policy is completed with the
-- defaults of the keys it leaves out.
SELECT queue.create_queue('q01_custom', max_attempts => 3,
                          retry_policy => '{"backoff": "linear", "delay": 10, "jitter": "full"}',
                          lease_timeout => '2 minutes', retention => '1 hour',
                          dead_retention => '7 days') > 0 AS created;
SELECT name, max_attempts, retry_policy, lease_timeout, retention, dead_retention, paused
  FROM queue.list_queues() WHERE name = 'q01_custom';

-- Numbers in a policy are kept as given (here fractions of a second).
SELECT queue.create_queue('q01_fraction', retry_policy => '{"delay": 0.1, "max_delay": 2.5, "factor": 1.5}') > 0 AS created;
SELECT retry_policy FROM queue.list_queues() WHERE name = 'q01_fraction';

-- Retentions may be zero (finished jobs are not kept at all).
SELECT queue.create_queue('q01_keep_nothing', retention => '0', dead_retention => '0') > 0 AS created;

-- A second queue of the same name is refused (duplicate_object) ...
SELECT queue.create_queue('q01_custom');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- ... unless if_not_exists, which returns the existing queue's id and
-- leaves its settings alone (they are not compared).
SELECT id AS custom_id FROM queue.queue WHERE name = 'q01_custom' \gset
SELECT queue.create_queue('q01_custom', max_attempts => 9, if_not_exists => true) = :custom_id
       AS same_id;
SELECT max_attempts FROM queue.list_queues() WHERE name = 'q01_custom';
-- if_not_exists of a new name creates it.
SELECT queue.create_queue('q01_new', if_not_exists => true) > 0 AS created;

-- list_queues lists every queue, in name order.
SELECT name FROM queue.list_queues() WHERE name LIKE 'q01%';

--
-- Queue names: 1 to 64 bytes of ASCII letters, digits and _ - . : starting
-- with a letter or a digit.
--
SELECT queue.create_queue('9Lives_-.:ok') > 0 AS created;
SELECT queue.create_queue(repeat('x', 64)) > 0 AS created_64_bytes;
SELECT queue.create_queue(repeat('x', 65));
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_queue('');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_queue(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_queue('_leading_underscore');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_queue('-leading-dash');
SELECT queue.create_queue('has space');
SELECT queue.create_queue('semi;colon');
SELECT queue.create_queue('quote''d');
SELECT queue.create_queue('slash/name');
SELECT queue.create_queue('café');
-- The length is counted in bytes: 33 two-byte letters are too long.
SELECT queue.create_queue(repeat('é', 33));
SELECT count(*) AS invalid_names_created FROM queue.queue
 WHERE name IN ('', '_leading_underscore', '-leading-dash', 'has space',
                'semi;colon', 'quote''d', 'slash/name', 'café')
    OR length(name) > 64;

--
-- Settings: NULLs, and values out of range.  Nothing is created.
--
SELECT queue.create_queue('q01_bad', max_attempts => NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_queue('q01_bad', retry_policy => NULL);
SELECT queue.create_queue('q01_bad', lease_timeout => NULL);
SELECT queue.create_queue('q01_bad', retention => NULL);
SELECT queue.create_queue('q01_bad', dead_retention => NULL);
SELECT queue.create_queue('q01_bad', if_not_exists => NULL);
SELECT queue.create_queue('q01_bad', max_attempts => 0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_queue('q01_bad', max_attempts => -1);
SELECT queue.create_queue('q01_bad', lease_timeout => '0');
SELECT queue.create_queue('q01_bad', lease_timeout => '-5 seconds');
SELECT queue.create_queue('q01_bad', retention => '-1 second');
SELECT queue.create_queue('q01_bad', dead_retention => '-1 day');

-- Retry policies: a JSON object of known keys with valid values.
SELECT queue.create_queue('q01_bad', retry_policy => '[]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_queue('q01_bad', retry_policy => '"fixed"');
SELECT queue.create_queue('q01_bad', retry_policy => '{"delai": 1}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"backoff": "quadratic"}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"backoff": 1}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"jitter": "some"}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"delay": -1}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"delay": "5"}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"delay": null}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"delay": 1e10}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"max_delay": -0.5}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"factor": 0.5}');
SELECT queue.create_queue('q01_bad', retry_policy => '{"factor": 1001}');
SELECT count(*) AS bad_created FROM queue.queue WHERE name = 'q01_bad';

-- Boundary values are accepted: factor 1, zero delays.
SELECT queue.create_queue('q01_edges', max_attempts => 1,
                          retry_policy => '{"backoff": "fixed", "delay": 0, "factor": 1, "max_delay": 0, "jitter": "decorrelated"}',
                          lease_timeout => '1 millisecond') > 0 AS created;
SELECT retry_policy, lease_timeout FROM queue.list_queues() WHERE name = 'q01_edges';

--
-- alter_queue changes the settings given; NULL (or left out) keeps one.
--
SELECT queue.alter_queue('q01_custom', max_attempts => 7);
SELECT name, max_attempts, retry_policy, lease_timeout, retention, dead_retention,
       updated_at > created_at AS updated
  FROM queue.list_queues() WHERE name = 'q01_custom';
SELECT queue.alter_queue('q01_custom', lease_timeout => '45 seconds');
SELECT queue.alter_queue('q01_custom', retention => '0');
SELECT queue.alter_queue('q01_custom', dead_retention => '1 day');
SELECT name, max_attempts, retry_policy, lease_timeout, retention, dead_retention
  FROM queue.list_queues() WHERE name = 'q01_custom';
-- A new retry policy replaces the old one as a whole: the keys it leaves
-- out take their defaults again (here backoff and delay).
SELECT queue.alter_queue('q01_custom', retry_policy => '{"jitter": "equal", "max_delay": 60}');
SELECT retry_policy FROM queue.list_queues() WHERE name = 'q01_custom';
-- Everything NULL changes nothing.
SELECT queue.alter_queue('q01_custom', NULL, NULL, NULL, NULL, NULL);
SELECT name, max_attempts, retry_policy, lease_timeout, retention, dead_retention
  FROM queue.list_queues() WHERE name = 'q01_custom';
-- Bad values are refused and change nothing.
SELECT queue.alter_queue('q01_custom', max_attempts => 0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.alter_queue('q01_custom', lease_timeout => '0');
SELECT queue.alter_queue('q01_custom', retention => '-1 hour');
SELECT queue.alter_queue('q01_custom', dead_retention => '-1 hour');
SELECT queue.alter_queue('q01_custom', retry_policy => '{"factor": 0}');
SELECT queue.alter_queue('q01_custom', max_attempts => 2, retry_policy => '{"unknown": 1}');
SELECT queue.alter_queue(NULL, max_attempts => 2);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT name, max_attempts, retry_policy, lease_timeout, retention, dead_retention
  FROM queue.list_queues() WHERE name = 'q01_custom';

-- max_attempts applies to jobs enqueued afterwards.
SELECT queue.enqueue('q01_custom', '{"n": 1}') AS before_alter \gset
SELECT queue.alter_queue('q01_custom', max_attempts => 2);
SELECT queue.enqueue('q01_custom', '{"n": 2}') AS after_alter \gset
SELECT payload, max_attempts FROM queue.jobs WHERE id IN (:before_alter, :after_alter) ORDER BY id;

--
-- pause_queue: a paused queue still takes jobs but hands none out.
--
SELECT queue.create_queue('q01_pause') > 0 AS created;
SELECT queue.pause_queue('q01_pause');
SELECT paused FROM queue.list_queues() WHERE name = 'q01_pause';
SELECT queue.enqueue('q01_pause', '{"n": 1}') > 0 AS enqueued;
SELECT count(*) AS claimed FROM queue.claim('q01_pause', 'w1');
-- Pausing twice is harmless.
SELECT queue.pause_queue('q01_pause');
SELECT queue.resume_queue('q01_pause');
SELECT paused FROM queue.list_queues() WHERE name = 'q01_pause';
SELECT payload, attempt FROM queue.claim('q01_pause', 'w1');
SELECT queue.pause_queue(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- purge_queue deletes the jobs that are not running (ready, scheduled and
-- retrying) and returns how many; running jobs are left to finish.
--
SELECT queue.create_queue('q01_purge', retry_policy => '{"delay": 3600}') > 0 AS created;
SELECT count(*) AS enqueued FROM queue.enqueue_many('q01_purge',
  '[{"payload": {"n": 1}, "priority": 9}, {"payload": {"n": 2}, "priority": 8},
    {"payload": {"n": 3}}, {"payload": {"n": 4}, "delay": "1 hour"}]');
-- Job 1 runs; job 2 failed and waits an hour to retry; 3 is ready, 4 scheduled.
CREATE TEMP TABLE q01_lease AS SELECT * FROM queue.claim('q01_purge', 'w1', 2);
SELECT queue.fail(job_id, lease_token, 'boom') FROM q01_lease WHERE payload = '{"n": 2}';
SELECT payload, state FROM queue.list_jobs('q01_purge') ORDER BY id;
SELECT queue.purge_queue('q01_purge');
SELECT payload, state FROM queue.list_jobs('q01_purge') ORDER BY id;
-- Nothing left to purge.
SELECT queue.purge_queue('q01_purge');

--
-- drop_queue refuses while jobs run (object_in_use) ...
--
SELECT queue.drop_queue('q01_purge');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS still_there FROM queue.list_queues() WHERE name = 'q01_purge';
-- ... and force => true drops it anyway, with its live jobs (running or
-- not) and its finished ones in the archive.
SELECT queue.create_queue('q01_other') > 0 AS created;
SELECT queue.enqueue('q01_other', '{"keep": true}') AS other_job \gset
SELECT queue.enqueue('q01_purge', '{"n": 5}') AS to_cancel \gset
SELECT queue.cancel_job(:to_cancel);
SELECT id AS purge_qid FROM queue.queue WHERE name = 'q01_purge' \gset
SELECT (SELECT count(*) FROM queue.job WHERE queue_id = :purge_qid) AS live,
       (SELECT count(*) FROM queue.job_archive WHERE queue_id = :purge_qid) AS finished;
SELECT queue.drop_queue('q01_purge', force => true);
SELECT (SELECT count(*) FROM queue.job WHERE queue_id = :purge_qid) AS live,
       (SELECT count(*) FROM queue.job_archive WHERE queue_id = :purge_qid) AS finished,
       (SELECT count(*) FROM queue.queue WHERE name = 'q01_purge') AS queues;
-- Other queues are untouched.
SELECT payload FROM queue.get_job(:other_job);
-- The running job of the dropped queue is gone too.
SELECT count(*) AS left_jobs FROM q01_lease l JOIN queue.job j ON j.id = l.job_id;
-- A dropped queue is unknown, and its name can be used again.
SELECT queue.enqueue('q01_purge', '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.drop_queue('q01_purge');
SELECT queue.create_queue('q01_purge') > 0 AS created_again;
SELECT count(*) AS jobs_in_new_queue FROM queue.list_jobs('q01_purge');
-- Dropping a queue without running jobs needs no force.
SELECT queue.drop_queue('q01_purge');
SELECT queue.drop_queue(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues()
 WHERE name LIKE 'q01%' OR name IN ('9Lives_-.:ok', repeat('x', 64));
SELECT count(*) AS remaining FROM queue.queue;
