--
-- 04_settle: complete, fail, extend and release, single and batch, and
-- fencing: a lease token that is no longer current is refused (QU001).
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 400001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 400000);
SELECT queue.create_queue('q04', max_attempts => 3, lease_timeout => '30 seconds',
                          retry_policy => '{"backoff": "fixed", "delay": 60}') > 0 AS created;

-- try(statement) runs a statement and shows its outcome: 'ok', or the
-- error's SQLSTATE, message and detail, with lease tokens (random) masked.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || regexp_replace(msg, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<token>', 'g')
		|| CASE WHEN det <> '' THEN E'\n' || det ELSE '' END;
END;
$$;

-- Leases taken in this suite, by a name of our own.
CREATE TEMP TABLE lease (name text PRIMARY KEY, job_id bigint, token uuid);
CREATE FUNCTION pg_temp.take(lname text, q text, worker text, lease interval DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
	INSERT INTO lease SELECT lname, c.job_id, c.lease_token
	  FROM queue.claim(q, worker, 1, lease) c RETURNING job_id;
$$;
-- settle(lname, call): runs queue.<call> on a named lease, through try().
CREATE FUNCTION pg_temp.settle(lname text, call text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try(format('SELECT queue.%s', replace(replace(call, '$id', l.job_id::text),
	                                                     '$token', quote_literal(l.token))))
	  FROM lease l WHERE l.name = lname;
$$;

--
-- complete: the job is finished; its result is kept with it.
--
SELECT queue.enqueue('q04', '{"n": 1}');
SELECT pg_temp.take('a', 'q04', 'worker-1');
SELECT pg_temp.settle('a', 'complete($id, $token, ''{"answer": 42}'')');
SELECT id, state, attempts, worker, result, errors, run_at, lease_expires_at,
       finished_at IS NOT NULL AS finished
  FROM queue.get_job(400001);
-- Completing it again is refused: the lease ended with the first complete.
SELECT pg_temp.settle('a', 'complete($id, $token)');
-- A result is optional.
SELECT queue.enqueue('q04', '{"n": 2}');
SELECT pg_temp.take('b', 'q04', 'worker-1');
SELECT pg_temp.settle('b', 'complete($id, $token)');
SELECT state, result FROM queue.get_job(400002);

-- A token that is not the job's current lease, and a job that does not
-- exist; both QU001, each with what the job's state is.
SELECT queue.enqueue('q04', '{"n": 3}');
SELECT pg_temp.take('c', 'q04', 'worker-1');
SELECT pg_temp.try('SELECT queue.complete(400003, ''00000000-0000-0000-0000-000000000000'')');
SELECT pg_temp.try('SELECT queue.complete(499999, ''00000000-0000-0000-0000-000000000000'')');
SELECT state, attempts FROM queue.get_job(400003);
-- NULL arguments.
SELECT queue.complete(NULL, '00000000-0000-0000-0000-000000000000');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.complete(400003, NULL);
-- A result over queue.max_payload_bytes is refused.
SET queue.max_payload_bytes = 64;
SELECT pg_temp.settle('c', 'complete($id, $token, jsonb_build_object(''blob'', repeat(''x'', 100)))');
RESET queue.max_payload_bytes;
SELECT state FROM queue.get_job(400003);

--
-- complete_many: all or nothing.
--
SELECT count(*) FROM queue.enqueue_many('q04', '[{"payload": {"n": 4}}, {"payload": {"n": 5}}, {"payload": {"n": 6}}]');
SELECT pg_temp.take('d4', 'q04', 'worker-2'), pg_temp.take('d5', 'q04', 'worker-2'),
       pg_temp.take('d6', 'q04', 'worker-2');
-- One stale pair (d6 with c's token): an error, and no job of the batch
-- is completed.
SELECT pg_temp.try(format('SELECT queue.complete_many(%L, %L)',
         ARRAY[(SELECT job_id FROM lease WHERE name = 'd4'), (SELECT job_id FROM lease WHERE name = 'd5'),
               (SELECT job_id FROM lease WHERE name = 'd6')],
         ARRAY[(SELECT token FROM lease WHERE name = 'd4'), (SELECT token FROM lease WHERE name = 'd5'),
               (SELECT token FROM lease WHERE name = 'c')]));
SELECT id, state FROM queue.list_jobs('q04') WHERE id BETWEEN 400004 AND 400006 ORDER BY id;
-- Shapes refused before anything is looked at.
SELECT queue.complete_many(ARRAY[400004, 400004], ARRAY[gen_random_uuid(), gen_random_uuid()]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.complete_many(ARRAY[400004, 400005], ARRAY[gen_random_uuid()]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.complete_many(ARRAY[400004], ARRAY[gen_random_uuid()], ARRAY['{}', '{}']::jsonb[]);
SELECT queue.complete_many(ARRAY[400004, NULL], ARRAY[gen_random_uuid(), gen_random_uuid()]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.complete_many(ARRAY[400004], ARRAY[NULL]::uuid[]);
SELECT queue.complete_many(NULL, ARRAY[gen_random_uuid()]);
SELECT queue.complete_many(ARRAY[400004], NULL);
SELECT queue.complete_many(ARRAY[[400004]], ARRAY[[gen_random_uuid()]]);
SET queue.max_batch_size = 2;
SELECT queue.complete_many(ARRAY[400004, 400005, 400006], ARRAY[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
RESET queue.max_batch_size;
-- Empty arrays complete nothing.
SELECT queue.complete_many('{}', '{}');
-- The right pairs complete every job, each with its result (NULL elements
-- of results mean no result), and return how many.
SELECT queue.complete_many(array_agg(job_id ORDER BY name), array_agg(token ORDER BY name),
                           ARRAY['{"r": 4}', NULL, '{"r": 6}']::jsonb[])
  FROM lease WHERE name IN ('d4', 'd5', 'd6');
SELECT id, state, result FROM queue.list_jobs('q04') WHERE id BETWEEN 400004 AND 400006 ORDER BY id;
-- Without results at all.
SELECT queue.enqueue('q04', '{"n": 7}');
SELECT pg_temp.take('e', 'q04', 'worker-2');
SELECT queue.complete_many(ARRAY[job_id], ARRAY[token]) FROM lease WHERE name = 'e';
SELECT state, result FROM queue.get_job(400007);

--
-- fail: the job retries after the delay its retry policy gives (the queue
-- retries at a fixed 60 s), or dies.
--
SELECT queue.enqueue('q04', '{"n": 8}');
SELECT pg_temp.take('f', 'q04', 'worker-3');
SELECT queue.fail(job_id, token, 'connection refused') FROM lease WHERE name = 'f';
SELECT state, attempts, last_error, worker, lease_expires_at,
       run_at - (errors -> -1 ->> 'at')::timestamptz AS backoff,
       run_at > clock_timestamp() AS in_future
  FROM queue.get_job(400008);
SELECT e ->> 'attempt' AS attempt, e ->> 'error' AS error, e ->> 'worker' AS worker,
       (e ->> 'at')::timestamptz <= clock_timestamp() AS at_ok
  FROM queue.get_job(400008), jsonb_array_elements(errors) e;
-- The token is spent: failing again is refused.
SELECT pg_temp.settle('f', 'fail($id, $token, ''again'')');
-- A retrying job is not claimable before its time.
SELECT count(*) AS claimed FROM queue.claim('q04', 'worker-3');
-- retry_delay overrides the policy.
SELECT queue.reschedule_job(400008, now());
SELECT pg_temp.take('f2', 'q04', 'worker-3');
SELECT queue.fail(job_id, token, 'timeout', retry_delay => '10 seconds') FROM lease WHERE name = 'f2';
SELECT state, attempts, run_at - (errors -> -1 ->> 'at')::timestamptz AS backoff
  FROM queue.get_job(400008);
-- The last attempt's failure kills the job: it is dead with its history.
SELECT queue.reschedule_job(400008, now());
SELECT pg_temp.take('f3', 'q04', 'worker-4');
SELECT queue.fail(job_id, token, 'still failing') FROM lease WHERE name = 'f3';
SELECT state, attempts, max_attempts, last_error, run_at, finished_at IS NOT NULL AS finished,
       jsonb_path_query_array(errors, '$[*].attempt') AS attempts_failed,
       jsonb_path_query_array(errors, '$[*].worker') AS workers
  FROM queue.get_job(400008);

-- A job's own retry policy overrides its queue's key by key: here the
-- delay only (the backoff stays the queue's fixed).
SELECT queue.enqueue('q04', '{"n": 9}', retry_policy => '{"delay": 5}');
SELECT pg_temp.take('g', 'q04', 'worker-3');
SELECT queue.fail(job_id, token, 'oops') FROM lease WHERE name = 'g';
SELECT state, run_at - (errors -> -1 ->> 'at')::timestamptz AS backoff FROM queue.get_job(400009);
-- A zero retry_delay makes it ready again at once.
SELECT queue.reschedule_job(400009, now());
SELECT pg_temp.take('g2', 'q04', 'worker-3');
SELECT queue.fail(job_id, token, 'oops', retry_delay => '0') FROM lease WHERE name = 'g2';
SELECT state, attempts FROM queue.get_job(400009);
SELECT queue.cancel_job(400009);

-- permanent: dead at once, whatever attempts are left.
SELECT queue.enqueue('q04', '{"n": 10}');
SELECT pg_temp.take('h', 'q04', 'worker-3');
SELECT queue.fail(job_id, token, 'invalid input', permanent => true) FROM lease WHERE name = 'h';
SELECT state, attempts, max_attempts, last_error FROM queue.get_job(400010);

-- Bad arguments.
SELECT queue.enqueue('q04', '{"n": 11}');
SELECT pg_temp.take('i', 'q04', 'worker-3');
SELECT pg_temp.settle('i', 'fail($id, $token, NULL)');
SELECT pg_temp.settle('i', 'fail($id, $token, ''x'', permanent => NULL)');
SELECT pg_temp.settle('i', 'fail($id, $token, ''x'', retry_delay => ''-1 second'')');
SELECT pg_temp.settle('i', 'fail(NULL, $token, ''x'')');
SET queue.max_payload_bytes = 16;
SELECT pg_temp.settle('i', 'fail($id, $token, repeat(''e'', 17))');
RESET queue.max_payload_bytes;
SELECT state, attempts FROM queue.get_job(400011);

--
-- fail_many: one row per job, in the order given, saying what became of
-- it; all or nothing like complete_many.
--
SELECT count(*) FROM queue.enqueue_many('q04', '[{"payload": {"n": 12}}, {"payload": {"n": 13}, "max_attempts": 1}]');
SELECT pg_temp.take('j12', 'q04', 'worker-5'), pg_temp.take('j13', 'q04', 'worker-5');
-- A stale pair: nothing changes.
SELECT pg_temp.try(format('SELECT queue.fail_many(%L, %L, %L)',
         ARRAY[400013, 400012],
         ARRAY[(SELECT token FROM lease WHERE name = 'j13'), (SELECT token FROM lease WHERE name = 'f')],
         ARRAY['e13', 'e12']));
SELECT id, state FROM queue.list_jobs('q04') WHERE id IN (400012, 400013) ORDER BY id;
SELECT queue.fail_many(ARRAY[400012, 400013], ARRAY[gen_random_uuid(), gen_random_uuid()], NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.fail_many(ARRAY[400012, 400013], ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['x', NULL]);
SELECT queue.fail_many(ARRAY[400012, 400013], ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['x']);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.fail_many(ARRAY[400012, 400012], ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['x', 'y']);
SELECT * FROM queue.fail_many('{}', '{}', '{}');
SELECT * FROM queue.fail_many(ARRAY[400013, 400012],
                              ARRAY[(SELECT token FROM lease WHERE name = 'j13'),
                                    (SELECT token FROM lease WHERE name = 'j12')],
                              ARRAY['e13', 'e12']);
SELECT id, state, last_error FROM queue.list_jobs('q04') WHERE id IN (400012, 400013) ORDER BY id;

--
-- extend: the lease runs for the given time from now (or the queue's
-- lease_timeout); returns the new expiry.
--
SELECT queue.enqueue('q04', '{"n": 14}');
SELECT pg_temp.take('k', 'q04', 'worker-6');
SELECT queue.extend(job_id, token, '10 minutes') AS expiry FROM lease WHERE name = 'k' \gset
SELECT lease_expires_at = :'expiry' AS stored,
       lease_expires_at - clock_timestamp() BETWEEN '9 minutes' AND '10 minutes' AS ten_minutes
  FROM queue.get_job(400014);
SELECT queue.extend(job_id, token) - clock_timestamp() BETWEEN '29 seconds' AND '30 seconds'
       AS queue_lease FROM lease WHERE name = 'k';
SELECT pg_temp.settle('k', 'extend($id, $token, ''0'')');
SELECT pg_temp.settle('k', 'extend($id, $token, ''-1 minute'')');
SELECT pg_temp.settle('k', 'extend($id, ''00000000-0000-0000-0000-000000000000'')');
SELECT state, attempts FROM queue.get_job(400014);

--
-- release: gives the job back without spending the attempt.
--
SELECT pg_temp.settle('k', 'release($id, $token)');
SELECT state, attempts, worker, run_at <= clock_timestamp() AS due FROM queue.get_job(400014);
-- The released token is refused from then on.
SELECT pg_temp.settle('k', 'complete($id, $token)');
SELECT pg_temp.settle('k', 'extend($id, $token)');
SELECT pg_temp.settle('k', 'release($id, $token)');
-- Claimed again, it is attempt 1 again.
SELECT pg_temp.take('k2', 'q04', 'worker-6');
SELECT attempts FROM queue.get_job(400014);
-- release with a delay: claimable after it.
SELECT pg_temp.settle('k2', 'release($id, $token, ''1 hour'')');
SELECT state, attempts, run_at - clock_timestamp() BETWEEN '59 minutes' AND '1 hour' AS in_an_hour
  FROM queue.get_job(400014);
SELECT queue.reschedule_job(400014, now());
SELECT pg_temp.take('k3', 'q04', 'worker-6');
SELECT pg_temp.settle('k3', 'release($id, $token, ''-1 second'')');
SELECT pg_temp.settle('k3', 'release($id, NULL)');
SELECT state, attempts FROM queue.get_job(400014);

--
-- Fencing after a lease expiry.  Two jobs are claimed with a very short
-- lease and let expire.
--
SELECT queue.create_queue('q04_fence', max_attempts => 3) > 0 AS created;
SELECT count(*) FROM queue.enqueue_many('q04_fence', '[{"payload": {"n": 15}}, {"payload": {"n": 16}}]');
SELECT pg_temp.take('old15', 'q04_fence', 'worker-slow', '10 milliseconds'),
       pg_temp.take('old16', 'q04_fence', 'worker-slow', '10 milliseconds');
SELECT pg_sleep(0.05);
-- Both leases have expired; the jobs still show as running.
SELECT id, state, lease_expires_at < clock_timestamp() AS expired
  FROM queue.list_jobs('q04_fence') ORDER BY id;
-- Job 15 is claimed again by another worker: attempt 2.  The re-claim
-- records the lost attempt as a 'lease expired' error.
SELECT pg_temp.take('new15', 'q04_fence', 'worker-fast');
SELECT attempts, worker, errors -> 0 ->> 'attempt' AS lost_attempt, errors -> 0 ->> 'error' AS error,
       errors -> 0 ->> 'worker' AS lost_by
  FROM queue.get_job(400015);
-- The old holder is refused whatever it tries, and nothing changes.
SELECT pg_temp.settle('old15', 'complete($id, $token, ''{"late": true}'')');
SELECT pg_temp.settle('old15', 'fail($id, $token, ''late failure'')');
SELECT pg_temp.settle('old15', 'extend($id, $token)');
SELECT pg_temp.settle('old15', 'release($id, $token)');
SELECT state, attempts, worker, jsonb_array_length(errors) AS errors FROM queue.get_job(400015);
-- The new holder completes it.
SELECT pg_temp.settle('new15', 'complete($id, $token, ''{"by": "fast"}'')');
SELECT state, attempts, worker, result FROM queue.get_job(400015);
-- Job 16's lease expired too, but nobody claimed it since: the old token is
-- still current, and its holder may extend and complete it.
SELECT pg_temp.settle('old16', 'extend($id, $token)');
SELECT pg_temp.settle('old16', 'complete($id, $token, ''{"late": "but fine"}'')');
SELECT state, attempts, worker, result, errors FROM queue.get_job(400016);

--
-- Retention zero: a finished job is not kept at all.
--
SELECT queue.create_queue('q04_nokeep', max_attempts => 3, retention => '0', dead_retention => '0') > 0 AS created;
SELECT count(*) FROM queue.enqueue_many('q04_nokeep', '[{"payload": {"n": 17}}, {"payload": {"n": 18}}, {"payload": {"n": 19}}]');
SELECT pg_temp.take('l17', 'q04_nokeep', 'worker-7'), pg_temp.take('l18', 'q04_nokeep', 'worker-7'),
       pg_temp.take('l19', 'q04_nokeep', 'worker-7');
SELECT pg_temp.settle('l17', 'complete($id, $token, ''{"r": 1}'')');
SELECT pg_temp.settle('l18', 'fail($id, $token, ''fatal'', permanent => true)');
SELECT pg_temp.settle('l19', 'fail($id, $token, ''retry me'')');
SELECT count(*) AS completed_kept FROM queue.get_job(400017);
SELECT count(*) AS dead_kept FROM queue.get_job(400018);
SELECT state FROM queue.get_job(400019);
SELECT count(*) AS archived FROM queue.job_archive WHERE id IN (400017, 400018);
-- Settling again says the job does not exist.
SELECT pg_temp.settle('l17', 'complete($id, $token)');

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues() WHERE name LIKE 'q04%';
