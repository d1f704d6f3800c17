--
-- 05_backoff: the delay a retry policy gives (queue.backoff_delay), and
-- that a failed job waits that long.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 500001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 500000);

-- Without jitter the delay after attempt n is exact:
--   fixed: delay; linear: delay * n; exponential: delay * factor^(n-1);
-- each capped at max_delay.
SELECT n,
       queue.backoff_delay('{"backoff": "fixed", "delay": 7}', n) AS fixed,
       queue.backoff_delay('{"backoff": "linear", "delay": 7}', n) AS linear,
       queue.backoff_delay('{"backoff": "exponential", "delay": 7}', n) AS exponential,
       queue.backoff_delay('{"backoff": "exponential", "delay": 0.5, "factor": 3}', n) AS factor_3,
       queue.backoff_delay('{"backoff": "linear", "delay": 7, "max_delay": 20}', n) AS linear_cap_20,
       queue.backoff_delay('{"delay": 7, "max_delay": 20}', n) AS exp_cap_20
  FROM generate_series(1, 5) n;
-- The defaults (a NULL or empty policy): exponential from 1 s, doubling,
-- capped at an hour.
SELECT n, queue.backoff_delay(NULL, n) AS null_policy, queue.backoff_delay('{}', n) AS empty_policy
  FROM unnest(ARRAY[1, 2, 3, 10, 12, 13, 100, 2147483647]) n;
-- A zero delay retries at once, whatever the attempt.
SELECT n, queue.backoff_delay('{"delay": 0}', n) AS exponential,
       queue.backoff_delay('{"backoff": "linear", "delay": 0}', n) AS linear
  FROM unnest(ARRAY[1, 2, 1000, 2000]) n;
-- Factor 1 keeps the delay constant; a zero cap makes every delay zero.
SELECT queue.backoff_delay('{"delay": 3, "factor": 1}', 50) AS factor_1,
       queue.backoff_delay('{"delay": 3, "max_delay": 0}', 5) AS cap_0;
-- Fractions of a second are kept to the microsecond.
SELECT queue.backoff_delay('{"backoff": "fixed", "delay": 0.123456}', 1) AS fraction;

--
-- Jitter draws from the server's PRNG: only bounds are checked, over 1000
-- draws each (with c the capped delay of the backoff):
--   full: [0, c]; equal: [c/2, c];
--   decorrelated: [delay, min(max_delay, max(delay, 3 * previous))], previous
--   being the delay before (delay itself for the first retry).
--
SELECT count(*) AS draws,
       bool_and(d BETWEEN '0' AND '8 seconds') AS in_bounds,
       count(DISTINCT d) > 900 AS varied,
       bool_or(d < '4 seconds') AND bool_or(d > '4 seconds') AS both_halves
  FROM (SELECT queue.backoff_delay('{"delay": 2, "jitter": "full"}', 3) AS d
          FROM generate_series(1, 1000)) s;
SELECT count(*) AS draws,
       bool_and(d BETWEEN '4 seconds' AND '8 seconds') AS in_bounds,
       count(DISTINCT d) > 900 AS varied
  FROM (SELECT queue.backoff_delay('{"delay": 2, "jitter": "equal"}', 3) AS d
          FROM generate_series(1, 1000)) s;
-- The cap applies before jitter.
SELECT bool_and(d BETWEEN '0' AND '5 seconds') AS full_capped,
       bool_and(e BETWEEN '2.5 seconds' AND '5 seconds') AS equal_capped
  FROM (SELECT queue.backoff_delay('{"delay": 2, "max_delay": 5, "jitter": "full"}', 10) AS d,
               queue.backoff_delay('{"delay": 2, "max_delay": 5, "jitter": "equal"}', 10) AS e
          FROM generate_series(1, 1000)) s;
-- Decorrelated: without a previous delay, in [delay, 3 * delay].
SELECT bool_and(d BETWEEN '2 seconds' AND '6 seconds') AS in_bounds,
       count(DISTINCT d) > 900 AS varied
  FROM (SELECT queue.backoff_delay('{"delay": 2, "jitter": "decorrelated"}', 1) AS d
          FROM generate_series(1, 1000)) s;
-- With a previous delay of 10 s: in [2, 30]; the backoff kind and the
-- attempt do not matter.
SELECT bool_and(d BETWEEN '2 seconds' AND '30 seconds') AS in_bounds,
       bool_or(d > '6 seconds') AS above_first_range
  FROM (SELECT queue.backoff_delay('{"backoff": "fixed", "delay": 2, "jitter": "decorrelated"}',
                                   7, '10 seconds') AS d
          FROM generate_series(1, 1000)) s;
-- Capped by max_delay: in [2, 12].
SELECT bool_and(d BETWEEN '2 seconds' AND '12 seconds') AS in_bounds
  FROM (SELECT queue.backoff_delay('{"delay": 2, "max_delay": 12, "jitter": "decorrelated"}',
                                   3, '10 seconds') AS d
          FROM generate_series(1, 1000)) s;
-- A previous delay smaller than delay/3 leaves only delay itself.
SELECT DISTINCT queue.backoff_delay('{"delay": 2, "jitter": "decorrelated"}', 2, '0.5 seconds') AS d
  FROM generate_series(1, 100);
-- Without jitter, a previous delay changes nothing.
SELECT queue.backoff_delay('{"delay": 2}', 3, '1 hour') AS exponential_3;

-- Bad arguments.
SELECT queue.backoff_delay('{}', 0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.backoff_delay('{}', -3);
SELECT queue.backoff_delay('{}', NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.backoff_delay('{}', 1, '-1 second');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.backoff_delay('{"backoff": "cubic"}', 1);
SELECT queue.backoff_delay('{"jitter": true}', 1);
SELECT queue.backoff_delay('{"delay": -1}', 1);
SELECT queue.backoff_delay('{"speed": 1}', 1);
SELECT queue.backoff_delay('[1]', 1);

--
-- A failed job waits what its policy gives: run_at minus the failure's
-- time (recorded in its error entry) is the delay.
--
SELECT queue.create_queue('q05', max_attempts => 10,
                          retry_policy => '{"backoff": "linear", "delay": 100, "jitter": "equal"}') > 0 AS created;
CREATE TEMP TABLE waits (attempt int, wait interval);
CREATE FUNCTION pg_temp.fail_and_measure(q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	c record;
BEGIN
	SELECT * INTO c FROM queue.claim(q, 'worker-1');
	PERFORM queue.fail(c.job_id, c.lease_token, 'failure ' || c.attempt);
	INSERT INTO waits
	SELECT c.attempt, j.run_at - (j.errors -> -1 ->> 'at')::timestamptz
	  FROM queue.get_job(c.job_id) j;
	PERFORM queue.reschedule_job(c.job_id, now());
END;
$$;
SELECT queue.enqueue('q05', '{}');
SELECT pg_temp.fail_and_measure('q05') FROM generate_series(1, 4);
-- Linear from 100 s with equal jitter: attempt n waits in [50n, 100n] s.
SELECT attempt, wait BETWEEN attempt * interval '50 seconds' AND attempt * interval '100 seconds'
       AS in_bounds
  FROM waits ORDER BY attempt;
-- Decorrelated (a fresh job): each wait in [delay, min(max_delay, 3 * the
-- wait before)], the first in [delay, 3 * delay].
SELECT queue.cancel_job(500001);
SELECT queue.alter_queue('q05', retry_policy => '{"delay": 1, "max_delay": 20, "jitter": "decorrelated"}');
SELECT queue.enqueue('q05', '{}');
TRUNCATE waits;
SELECT pg_temp.fail_and_measure('q05') FROM generate_series(1, 6);
SELECT attempt,
       wait BETWEEN '1 second' AND least('20 seconds',
                                        3 * coalesce(lag(wait) OVER (ORDER BY attempt), '1 second'))
       AS in_bounds
  FROM waits ORDER BY attempt;
-- A job's own policy overrides the queue's key by key: no jitter, so the
-- waits are exact (3, 12, then 48 capped by the queue's max_delay of 20).
SELECT queue.cancel_job(500002);
SELECT queue.enqueue('q05', '{}', retry_policy => '{"backoff": "exponential", "delay": 3, "factor": 4, "jitter": "none"}');
TRUNCATE waits;
SELECT pg_temp.fail_and_measure('q05') FROM generate_series(1, 3);
SELECT attempt, wait FROM waits ORDER BY attempt;

-- Clean up.
SELECT queue.drop_queue('q05');
