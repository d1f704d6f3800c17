--
-- 07_jobs: looking jobs up and listing them, cancelling, deleting and
-- rescheduling them, expiring leases, and pruning finished jobs.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 700001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 700000);
SELECT queue.create_queue('q07', max_attempts => 2,
                          retry_policy => '{"backoff": "fixed", "delay": 3600}') > 0 AS created;

-- One job in each state: 1 ready, 2 scheduled, 3 retrying, 4 running,
-- 5 completed, 6 dead, 7 cancelled; 8 and 9 ready too.
SELECT count(*) FROM queue.enqueue_many('q07', '[
  {"payload": {"n": 1}, "priority": -1},
  {"payload": {"n": 2}, "delay": "1 hour"},
  {"payload": {"n": 3}, "priority": 9},
  {"payload": {"n": 4}, "priority": 8},
  {"payload": {"n": 5}, "priority": 7},
  {"payload": {"n": 6}, "priority": 6, "max_attempts": 1},
  {"payload": {"n": 7}},
  {"payload": {"n": 8}, "priority": -1},
  {"payload": {"n": 9}, "priority": -1}]');
CREATE TEMP TABLE c AS SELECT * FROM queue.claim('q07', 'worker-1', 4);
SELECT job_id, payload FROM c ORDER BY job_id;
SELECT queue.fail(job_id, lease_token, 'try later') FROM c WHERE job_id = 700003;
SELECT queue.complete(job_id, lease_token, '{"ok": true}') FROM c WHERE job_id = 700005;
SELECT queue.fail(job_id, lease_token, 'broken') FROM c WHERE job_id = 700006;
SELECT queue.cancel_job(700007);

-- get_job: a live or finished job; no row for an unknown one.
SELECT id, state, attempts, payload, worker, result, last_error,
       run_at IS NOT NULL AS has_run_at, lease_expires_at IS NOT NULL AS has_lease,
       claimed_at IS NOT NULL AS claimed, finished_at IS NOT NULL AS finished
  FROM queue.list_jobs('q07') ORDER BY id;
SELECT count(*) AS rows FROM queue.get_job(799999);
SELECT count(*) AS rows FROM queue.get_job(NULL);

-- list_jobs by state.
SELECT s AS state, array(SELECT id FROM queue.list_jobs('q07', s) ORDER BY id) AS ids
  FROM unnest(ARRAY['ready', 'scheduled', 'retrying', 'running', 'completed', 'dead',
                    'cancelled']) s;
-- Paging: in id order, page_size at a time, after the last id seen.
SELECT id FROM queue.list_jobs('q07', page_size => 3);
SELECT id FROM queue.list_jobs('q07', page_size => 3, after_id => 700003);
SELECT id FROM queue.list_jobs('q07', 'ready', page_size => 2, after_id => 700001);
SELECT id FROM queue.list_jobs('q07', 'ready', page_size => 2, after_id => 700009);
SELECT count(*) FROM queue.list_jobs('q07', NULL, 10000, NULL);
-- Bad arguments.
SELECT queue.list_jobs('q07', 'waiting');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.list_jobs('q07', 'Ready');
SELECT queue.list_jobs('q07', page_size => 0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.list_jobs('q07', page_size => 10001);
SELECT queue.list_jobs('q07', page_size => NULL);
SELECT queue.list_jobs('q07_nope');
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- cancel_job: a job that is not running moves to the finished jobs as
-- cancelled.
--
SELECT queue.cancel_job(700002);
SELECT queue.cancel_job(700003);
SELECT id, state, attempts, last_error, finished_at IS NOT NULL AS finished
  FROM queue.list_jobs('q07', 'cancelled') ORDER BY id;
-- Running: refused (object_not_in_prerequisite_state), with who holds it.
SELECT queue.cancel_job(700004);
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- Finished: refused.
SELECT queue.cancel_job(700005);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.cancel_job(700007);
-- Unknown: 42704.
SELECT queue.cancel_job(799999);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.cancel_job(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- delete_job: a live job that is not running, or a finished one, is gone
-- for good.
--
SELECT queue.delete_job(700008);
SELECT queue.delete_job(700005);
SELECT queue.delete_job(700006);
SELECT queue.delete_job(700002);
SELECT count(*) AS rows FROM queue.get_job(700008);
SELECT array(SELECT id FROM queue.list_jobs('q07') ORDER BY id) AS remaining;
SELECT queue.delete_job(700004);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.delete_job(700008);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.delete_job(NULL);

--
-- reschedule_job: a waiting job moves to a new time.
--
SELECT queue.reschedule_job(700009, now() + interval '1 day');
SELECT state, run_at > now() + interval '23 hours' AS moved_a_day_ahead FROM queue.get_job(700009);
SELECT queue.reschedule_job(700009, now() - interval '1 minute');
SELECT state FROM queue.get_job(700009);
SELECT queue.reschedule_job(700004, now());
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.reschedule_job(700007, now());
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.reschedule_job(799999, now());
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.reschedule_job(700009, NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- Like enqueue's run_at, the new time must be finite.
SELECT queue.reschedule_job(700009, 'infinity');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT state FROM queue.get_job(700009);

--
-- expire_leases: a lease that expired on the job's last attempt makes it
-- dead with the error 'lease expired' (such a job is never claimed again).
-- A lease that expired on an earlier attempt is left alone: the job is
-- claimable again, and that claim records the 'lease expired' error.
--
SELECT queue.create_queue('q07_expire', max_attempts => 2) > 0 AS created;
SELECT count(*) FROM queue.enqueue_many('q07_expire', '[{"payload": {"n": 10}, "max_attempts": 1},
                                                        {"payload": {"n": 11}},
                                                        {"payload": {"n": 12}, "max_attempts": 1}]');
SELECT count(*) FROM queue.claim('q07_expire', 'worker-2', 2, '10 milliseconds');
SELECT job_id FROM queue.claim('q07_expire', 'worker-2', 1, '1 hour');
SELECT pg_sleep(0.05);
SELECT queue.expire_leases();
SELECT id, state, attempts, last_error, errors -> -1 ->> 'worker' AS worker,
       errors -> -1 ->> 'attempt' AS attempt
  FROM queue.list_jobs('q07_expire') ORDER BY id;
-- Nothing left to expire (job 12's lease still holds).
SELECT queue.expire_leases();
-- Job 11 is claimed again: attempt 2, with the lost attempt recorded.
SELECT job_id, attempt FROM queue.claim('q07_expire', 'worker-3', 5, '10 milliseconds');
SELECT e ->> 'attempt' AS attempt, e ->> 'error' AS error, e ->> 'worker' AS worker
  FROM queue.get_job(700011), jsonb_array_elements(errors) e;
-- Its last attempt expires too: now it is dead.
SELECT pg_sleep(0.05);
SELECT count(*) AS claimable FROM queue.claim('q07_expire', 'worker-4');
SELECT queue.expire_leases(batch_size => 1);
SELECT id, state, jsonb_path_query_array(errors, '$[*].error') AS errors
  FROM queue.get_job(700011);
SELECT queue.expire_leases(0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.expire_leases(NULL);

--
-- prune: finished jobs past their queue's retention (completed and
-- cancelled) or dead_retention (dead) are deleted, at most batch_size per
-- queue and state per call; returns how many.
--
SELECT queue.create_queue('q07_prune', max_attempts => 1, retention => '1 hour',
                          dead_retention => '1 hour') > 0 AS created;
SELECT count(*) FROM queue.enqueue_many('q07_prune', (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('n', i))) FROM generate_series(1, 9) i));
-- 700013-700015 complete, 700016-700018 die, 700019-700021 are cancelled.
CREATE TEMP TABLE p AS SELECT * FROM queue.claim('q07_prune', 'worker-5', 6);
SELECT count(*) FROM p, queue.complete(job_id, lease_token) WHERE job_id <= 700015;
SELECT count(*) FROM p, queue.fail(job_id, lease_token, 'x') WHERE job_id > 700015;
SELECT count(*) FROM generate_series(700019, 700021) i, queue.cancel_job(i);
SELECT state, count(*) FROM queue.list_jobs('q07_prune') GROUP BY state ORDER BY state;
-- Within retention, nothing goes.
SELECT queue.prune();
-- Past the retention of completed and cancelled jobs (a tiny retention),
-- those go, two per state at a time; dead jobs stay.
SELECT queue.alter_queue('q07_prune', retention => '1 millisecond');
SELECT pg_sleep(0.01);
SELECT queue.prune(batch_size => 2);
SELECT state, count(*) FROM queue.list_jobs('q07_prune') GROUP BY state ORDER BY state;
SELECT queue.prune(batch_size => 2);
SELECT state, count(*) FROM queue.list_jobs('q07_prune') GROUP BY state ORDER BY state;
-- Dead jobs go with dead_retention.
SELECT queue.alter_queue('q07_prune', dead_retention => '0');
SELECT queue.prune();
SELECT count(*) AS left FROM queue.list_jobs('q07_prune');
SELECT queue.prune();
SELECT queue.prune(0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.prune(NULL);

-- batch_size bounds prune whatever the plan: with every join method but the
-- nested loop turned off, a locking subquery in a semi join would run again
-- for each row deleted and take the whole queue.
SELECT queue.create_queue('q07_prune_plan', max_attempts => 1, retention => '1 hour') IS NOT NULL AS created;
SELECT count(*) FROM queue.enqueue_many('q07_prune_plan',
  (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('n', i)))
     FROM generate_series(1, 6) i));
CREATE TEMP TABLE q07_pp AS SELECT * FROM queue.claim('q07_prune_plan', 'w', 6);
SELECT count(*) FROM q07_pp, LATERAL queue.complete(job_id, lease_token);
SELECT queue.alter_queue('q07_prune_plan', retention => '1 millisecond');
SELECT pg_sleep(0.01);
ALTER FUNCTION queue.prune(integer) SET enable_hashjoin = off;
ALTER FUNCTION queue.prune(integer) SET enable_mergejoin = off;
ALTER FUNCTION queue.prune(integer) SET enable_material = off;
ALTER FUNCTION queue.prune(integer) SET enable_hashagg = off;
ALTER FUNCTION queue.prune(integer) SET enable_sort = off;
SELECT queue.prune(batch_size => 2) AS pruned;
SELECT count(*) AS left FROM queue.list_jobs('q07_prune_plan');
ALTER FUNCTION queue.prune(integer) RESET ALL;
ALTER FUNCTION queue.prune(integer) SET search_path = pg_catalog, pg_temp;

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues() WHERE name LIKE 'q07%';
