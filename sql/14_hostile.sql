--
-- 14_hostile: hostile names and option values.  A corpus of names (SQL
-- metacharacters, quotes, backslashes, Unicode with combining characters,
-- emoji and homoglyphs, empty, NULL, 63/64/65 bytes, reserved words,
-- leading underscore or digit, whitespace and control characters) is passed
-- to every function that takes a queue, topic, channel, saga, step, worker
-- or key name, and a list of hostile option values (negative, huge,
-- NaN/Infinity as JSON can carry them, wrong JSON types, 10,000-level JSON
-- nesting, JSON over queue.max_payload_bytes) to the functions that take
-- them.  Each call runs in its own subtransaction; its SQLSTATE is recorded
-- next to the SQLSTATE the README documents (h14_expect_* below), and every
-- mismatch is listed at the end (there must be none).  Inputs go in as
-- bind parameters or built values, never spliced into SQL text, so the
-- harness is no weaker than a careful client.
--
-- At the end: no relation, function, schema, type or trigger appeared;
-- the canary table a hostile name tries to drop still exists; the queue
-- tables hold exactly the rows the accepted calls made, and every accepted
-- hostile name or key is stored byte for byte, as data.
--
-- Rows 196-199 are the deviations this suite first found, now fixed: JSON
-- numbers beyond double precision, and intervals past 100 years that were
-- accepted and then broke every later claim or prune.
--
\set SHOW_CONTEXT never

-- The harness, created before the catalog baseline is taken.
CREATE TABLE h14_canary (x int);
CREATE TABLE h14_try (n serial PRIMARY KEY, fn text, label text, expected text,
					  outcome text, msg text, result text);
CREATE TABLE h14_names (ord int PRIMARY KEY, label text NOT NULL, v text);
CREATE TABLE h14_base (what text PRIMARY KEY, n bigint);

-- Runs stmt with $1 = arg in a subtransaction and records what happened;
-- the input is masked as <input> in the message so the output is plain
-- (and stable).
CREATE FUNCTION h14(fn text, label text, expected text, stmt text, arg text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	st text;
	m text;
	r text;
BEGIN
	BEGIN
		EXECUTE stmt INTO r USING arg;
		st := 'ok';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT;
	END;
	IF arg IS NOT NULL AND arg <> '' THEN
		m := replace(m, arg, '<input>');
	END IF;
	-- lease tokens and job ids vary from run to run
	m := regexp_replace(m, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<token>', 'g');
	m := regexp_replace(m, 'job [0-9]+', 'job N', 'g');
	INSERT INTO h14_try (fn, label, expected, outcome, msg, result)
	VALUES (fn, label, expected, st, left(m, 90), r);
END;
$$;

-- What the README says a name check gives (queue, topic, saga, step names:
-- 64 bytes; channel names: 63).
CREATE FUNCTION h14_expect_name(v text, maxlen int DEFAULT 64) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN v IS NULL THEN '22004'
				WHEN v = '' THEN '42602'
				WHEN octet_length(v) > maxlen THEN '42622'
				WHEN v COLLATE "C" !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' THEN '42602'
				ELSE 'ok' END
$$;
-- Channel names: checked as queue names (64 bytes), then against the 63
-- bytes NOTIFY takes; so a 64-byte name that is also invalid is 42602.
CREATE FUNCTION h14_expect_channel(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN h14_expect_name(v) <> 'ok' THEN h14_expect_name(v)
				WHEN octet_length(v) > 63 THEN '42622' ELSE 'ok' END
$$;
-- Lookup of a name: the object exists, or it does not (whatever the name).
CREATE FUNCTION h14_expect_lookup(v text, present boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN v IS NULL THEN '22004' WHEN present THEN 'ok' ELSE '42704' END
$$;
-- dedup_key, group_key, event key, idempotency_key: NULL or 1 to 512 bytes.
CREATE FUNCTION h14_expect_key(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN v IS NULL OR octet_length(v) BETWEEN 1 AND 512 THEN 'ok'
				ELSE '22023' END
$$;
-- worker names: any text of 1 to 128 bytes.
CREATE FUNCTION h14_expect_worker(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN v IS NULL THEN '22004' WHEN v = '' THEN '22023'
				WHEN octet_length(v) > 128 THEN '42622' ELSE 'ok' END
$$;

-- The corpus.  Every value is distinct.
INSERT INTO h14_names (ord, label, v) VALUES
	(1, 'plain', 'h14_plain'),
	(2, 'upper case', 'H14_PLAIN'),
	(3, 'reserved select', 'select'),
	(4, 'reserved TABLE', 'TABLE'),
	(5, 'word null', 'null'),
	(6, 'leading digit', '14h'),
	(7, 'schema-like queue.job', 'queue.job'),
	(8, 'all punctuation', 'h14:a-b.c_d'),
	(9, 'LIKE wildcard _', 'h14_a_b'),
	(10, '63 bytes', repeat('a', 63)),
	(11, '64 bytes', repeat('b', 64)),
	(12, '65 bytes', repeat('c', 65)),
	(13, '128 bytes', repeat('d', 128)),
	(14, '129 bytes', repeat('e', 129)),
	(15, '512 bytes', repeat('f', 512)),
	(16, '513 bytes', repeat('g', 513)),
	(17, 'empty', ''),
	(18, 'NULL', NULL),
	(19, 'inject drop table', $i$'; DROP TABLE h14_canary; --$i$),
	(20, 'inject drop schema', $i$x'); DROP SCHEMA queue CASCADE; --$i$),
	(21, 'double quote', 'h14"q'),
	(22, 'double-quoted', '"h14"'),
	(23, 'backslash', 'h14\q'),
	(24, 'trailing backslash', 'h14\'),
	(25, 'dollar quote', '$$; SELECT 1; $$'),
	(26, 'format string', '%s%n%d%%'),
	(27, 'comment', 'h14/*x*/'),
	(28, 'semicolon', 'h14;'),
	(29, 'LIKE wildcard %', 'h14%'),
	(30, 'regex', 'h14.*'),
	(31, 'leading underscore', '_h14'),
	(32, 'leading dash', '-h14'),
	(33, 'leading dot', '.h14'),
	(34, 'leading colon', ':h14'),
	(35, 'path traversal', '../etc/passwd'),
	(36, 'inner space', 'h14 q'),
	(37, 'leading space', ' h14'),
	(38, 'trailing space', 'h14 '),
	(39, 'only spaces', '   '),
	(40, 'tab', E'h14\tq'),
	(41, 'newline', E'h14\nq'),
	(42, 'CR LF', E'h14\r\n'),
	(43, 'control char', E'h14\x01'),
	(44, 'no-break space', U&'h14\00A0q'),
	(45, 'accented', 'café'),
	(46, 'combining acute', 'cafe' || U&'\0301'),
	(47, 'emoji', U&'\+01F680h14'),
	(48, 'zero-width space', U&'h14\200Bq'),
	(49, 'RTL override', U&'h14\202Eq'),
	(50, 'Cyrillic homoglyph', U&'h14_qu\0435ue'),
	(51, 'fullwidth', U&'\FF48\FF11\FF14'),
	(52, 'Arabic-Indic digit', U&'\0663h14'),
	(53, '64 bytes of é', repeat(U&'\00e9', 32)),
	(54, '66 bytes of é', repeat(U&'\00e9', 33)),
	(55, '512 bytes of é', repeat(U&'\00e9', 256)),
	(56, '514 bytes of é', repeat(U&'\00e9', 257)),
	(57, 'emoji 128 bytes', repeat(U&'\+01F680', 32)),
	(58, 'emoji 132 bytes', repeat(U&'\+01F680', 33));
SELECT count(*) AS corpus_size, count(DISTINCT v) AS distinct_values FROM h14_names;

-- Fixtures: a queue for claims with hostile worker names, one for fail
-- with hostile errors, a topic, a queue for saga steps.
SELECT queue.create_queue('h14_q') > 0 AS created;
SELECT queue.create_queue('h14_w', retry_policy => '{"delay": 0}') > 0 AS created;
SELECT queue.create_queue('h14_f', retry_policy => '{"delay": 0}') > 0 AS created;
SELECT queue.create_queue('h14_o', ordered => true) > 0 AS created;
SELECT queue.create_topic('h14_t') > 0 AS created;
SELECT count(queue.enqueue('h14_w', '{}')) AS jobs FROM generate_series(1, 80);
SELECT count(queue.enqueue('h14_f', '{}')) AS jobs FROM generate_series(1, 80);
SELECT queue.define_saga('h14_saga', '[{"name": "a", "queue": "h14_q"}]') AS version;

-- The baseline: catalogs and the queue tables.
INSERT INTO h14_base
SELECT 'pg_class', count(*) FROM pg_class UNION ALL
SELECT 'pg_proc', count(*) FROM pg_proc UNION ALL
SELECT 'pg_namespace', count(*) FROM pg_namespace UNION ALL
SELECT 'pg_type', count(*) FROM pg_type UNION ALL
SELECT 'pg_trigger', count(*) FROM pg_trigger UNION ALL
SELECT 'pg_roles', count(*) FROM pg_roles UNION ALL
SELECT 'queue', count(*) FROM queue.queue UNION ALL
SELECT 'job', (SELECT count(*) FROM queue.job) + (SELECT count(*) FROM queue.job_archive) UNION ALL
SELECT 'max_job_id', (SELECT coalesce(max(id), 0) FROM queue.job) UNION ALL
SELECT 'topic', count(*) FROM queue.topic UNION ALL
SELECT 'subscription', count(*) FROM queue.subscription UNION ALL
SELECT 'event', (SELECT count(*) FROM queue.event) + (SELECT count(*) FROM queue.event_archive) UNION ALL
SELECT 'saga_definition', count(*) FROM queue.saga_definition UNION ALL
SELECT 'saga', count(*) FROM queue.saga;

--
-- Names.  Each row: the function, the input, the documented outcome and
-- what happened.
--
-- create_queue: the name check itself.
SELECT count(*) AS tried FROM (SELECT h14('create_queue', label, h14_expect_name(v),
		   'SELECT queue.create_queue($1)', v) FROM h14_names ORDER BY ord) s;
-- Every other function that takes a queue name looks it up: the names
-- created above exist, every other name does not (no error but 42704).
SELECT count(*) AS tried FROM (SELECT h14('enqueue', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)),
		   'SELECT queue.enqueue($1, ''{"h14": 1}'')', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('enqueue_many', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)),
		   'SELECT count(*) FROM queue.enqueue_many($1, ''[{"payload": {"h14": 2}}, {"payload": {}}]'')', v)
  FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('claim', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)),
		   'SELECT count(*) FROM queue.claim($1, ''h14-worker'')', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('alter_queue', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)),
		   'SELECT queue.alter_queue($1, max_attempts => 7)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('pause_queue', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)),
		   'SELECT queue.pause_queue($1)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('resume_queue', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)),
		   'SELECT queue.resume_queue($1)', v) FROM h14_names ORDER BY ord) s;
-- LIKE and regex metacharacters do not widen a lookup.
SELECT count(*) AS tried FROM (SELECT h14('enqueue', 'h14_aXb (LIKE match of h14_a_b)', '42704',
		   'SELECT queue.enqueue(''h14_aXb'', ''{}'')')) s;
SELECT count(*) AS tried FROM (SELECT h14('enqueue', 'h14_plai% (LIKE match)', '42704',
		   'SELECT queue.enqueue(''h14_plai%'', ''{}'')')) s;
SELECT count(*) AS tried FROM (SELECT h14('drop_queue', 'h14_% (LIKE match of every fixture)', '42704',
		   'SELECT queue.drop_queue(''h14_%'', force => true)')) s;
SELECT count(*) AS tried FROM (SELECT h14('purge_queue', 'h14_. (regex match)', '42704',
		   'SELECT queue.purge_queue(''h14_.'')')) s;

-- Worker names (any text, 1 to 128 bytes) are data: claims on h14_w.
SELECT count(*) AS tried FROM (SELECT h14('claim worker', label, h14_expect_worker(v),
		   'SELECT count(*) FROM queue.claim(''h14_w'', $1)', v) FROM h14_names ORDER BY ord) s;
-- Error messages of fail are data: each call claims a job of h14_f and
-- fails it with the text.
SELECT count(*) AS tried FROM (SELECT h14('fail error', label, CASE WHEN v IS NULL THEN '22004' ELSE 'ok' END,
		   'SELECT queue.fail(c.job_id, c.lease_token, $1) FROM queue.claim(''h14_f'', ''h14-failer'') c', v)
  FROM h14_names ORDER BY ord) s;
-- Deduplication and group keys are data (1 to 512 bytes).
SELECT count(*) AS tried FROM (SELECT h14('enqueue dedup_key', label, h14_expect_key(v),
		   'SELECT queue.enqueue(''h14_q'', ''{"dedup": 1}'', dedup_key => $1)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('enqueue group_key', label, h14_expect_key(v),
		   'SELECT queue.enqueue(''h14_o'', ''{"group": 1}'', group_key => $1)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('enqueue_many keys', label, h14_expect_key('m' || v),
		   'SELECT count(*) FROM queue.enqueue_many(''h14_o'', jsonb_build_array(jsonb_build_object(''payload'', ''{}''::jsonb, ''dedup_key'', ''m'' || $1, ''group_key'', ''m'' || $1)))', v)
  FROM h14_names WHERE v IS NOT NULL AND v <> '' ORDER BY ord) s;

-- Topics.
SELECT count(*) AS tried FROM (SELECT h14('create_topic', label, h14_expect_name(v),
		   'SELECT queue.create_topic($1)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('publish', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.topic t WHERE t.name = v)),
		   'SELECT queue.publish($1, ''{"h14": 1}'')', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('publish_many', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.topic t WHERE t.name = v)),
		   'SELECT count(*) FROM queue.publish_many($1, ''[{"payload": {}}]'')', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('subscribe topic', label, h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.topic t WHERE t.name = v)),
		   'SELECT queue.subscribe($1, queue => ''h14_q'')', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('drop_topic', label, h14_expect_lookup(v, false),
		   'SELECT queue.drop_topic($1 || ''-gone'')', v) FROM h14_names WHERE v IS NOT NULL ORDER BY ord) s;
-- Event keys are data.
SELECT count(*) AS tried FROM (SELECT h14('publish key', label, h14_expect_key(v),
		   'SELECT queue.publish(''h14_t'', ''{"key": 1}'', key => $1)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('publish_many key', label, h14_expect_key(v),
		   'SELECT count(*) FROM queue.publish_many(''h14_t'', jsonb_build_array(jsonb_build_object(''payload'', ''{}''::jsonb, ''key'', $1)))', v)
  FROM h14_names WHERE v IS NOT NULL ORDER BY ord) s;
-- Channel names: the rule of queue names with at most 63 bytes.  NULL
-- means no channel, and then neither queue nor channel is given.
SELECT count(*) AS tried FROM (SELECT h14('subscribe channel', label, CASE WHEN v IS NULL THEN '22023' ELSE h14_expect_channel(v) END,
		   'SELECT queue.subscribe(''h14_t'', channel => $1)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('unsubscribe channel', label,
		   CASE WHEN v IS NULL THEN '22023'
				WHEN EXISTS (SELECT 1 FROM queue.subscription s WHERE s.channel = v) THEN 'ok'
				WHEN h14_expect_channel(v) <> 'ok' THEN h14_expect_channel(v)
				ELSE '42704' END,
		   'SELECT queue.unsubscribe(''h14_t'', channel => $1)', v)
  FROM h14_names WHERE ord IN (1, 10, 11, 17, 18, 19, 47) ORDER BY ord) s;

-- Sagas: type names, step names, step queues, idempotency keys.
SELECT count(*) AS tried FROM (SELECT h14('define_saga', label, h14_expect_name(v),
		   'SELECT queue.define_saga($1, ''[{"name": "a", "queue": "h14_q"}]'')', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('define_saga step name', label,
		   CASE WHEN v IS NULL THEN '22023' ELSE h14_expect_name(v) END,
		   'SELECT queue.define_saga(''h14_steps'', jsonb_build_array(jsonb_build_object(''name'', $1, ''queue'', ''h14_q'')))', v)
  FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('define_saga step queue', label,
		   CASE WHEN v IS NULL THEN '22023' ELSE h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)) END,
		   'SELECT queue.define_saga(''h14_stepq'', jsonb_build_array(jsonb_build_object(''name'', ''a'', ''queue'', $1)))', v)
  FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('define_saga compensation_queue', label,
		   CASE WHEN v IS NULL THEN 'ok' ELSE h14_expect_lookup(v, EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)) END,
		   'SELECT queue.define_saga(''h14_compq'', jsonb_build_array(jsonb_build_object(''name'', ''a'', ''queue'', ''h14_q'', ''compensation_queue'', $1)))', v)
  FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('start_saga', label,
		   CASE WHEN v IS NULL THEN '22004'
				WHEN EXISTS (SELECT 1 FROM queue.saga_definition d WHERE d.name = v) THEN 'ok'
				ELSE '42704' END,
		   'SELECT queue.start_saga($1)', v) FROM h14_names ORDER BY ord) s;
SELECT count(*) AS tried FROM (SELECT h14('start_saga idempotency_key', label, h14_expect_key(v),
		   'SELECT queue.start_saga(''h14_saga'', ''{}'', $1)', v) FROM h14_names ORDER BY ord) s;

--
-- Option values.  Each statement is fixed text; the hostile part is built
-- in it.
--
SELECT count(*) AS tried FROM (SELECT h14(fn, label, expected, stmt) FROM (VALUES
	-- create_queue settings
	(1, 'create_queue', 'max_attempts 0', '22023', $s$SELECT queue.create_queue('h14_x', max_attempts => 0)$s$),
	(2, 'create_queue', 'max_attempts -2147483648', '22023', $s$SELECT queue.create_queue('h14_x', max_attempts => -2147483648)$s$),
	(3, 'create_queue', 'max_attempts NULL', '22004', $s$SELECT queue.create_queue('h14_x', max_attempts => NULL)$s$),
	(4, 'create_queue', 'lease_timeout 0', '22023', $s$SELECT queue.create_queue('h14_x', lease_timeout => '0')$s$),
	(5, 'create_queue', 'lease_timeout -1 us', '22023', $s$SELECT queue.create_queue('h14_x', lease_timeout => '-1 microsecond')$s$),
	(6, 'create_queue', 'lease_timeout 1 mon -30 days', '22023', $s$SELECT queue.create_queue('h14_x', lease_timeout => '1 mon -30 days')$s$),
	(7, 'create_queue', 'retention -1 s', '22023', $s$SELECT queue.create_queue('h14_x', retention => '-1 second')$s$),
	(8, 'create_queue', 'dead_retention -1 year', '22023', $s$SELECT queue.create_queue('h14_x', dead_retention => '-1 year')$s$),
	(9, 'create_queue', 'if_not_exists NULL', '22004', $s$SELECT queue.create_queue('h14_x', if_not_exists => NULL)$s$),
	(10, 'create_queue', 'ordered NULL', '22004', $s$SELECT queue.create_queue('h14_x', ordered => NULL)$s$),
	(11, 'create_queue', 'max_attempts 2147483647', 'ok', $s$SELECT queue.create_queue('h14_maxatt', max_attempts => 2147483647)$s$),
	-- retry policies
	(20, 'create_queue', 'policy NULL', '22004', $s$SELECT queue.create_queue('h14_x', retry_policy => NULL)$s$),
	(21, 'create_queue', 'policy JSON null', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => 'null')$s$),
	(22, 'create_queue', 'policy array', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '[]')$s$),
	(23, 'create_queue', 'policy string', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '"{}"')$s$),
	(24, 'create_queue', 'policy 10,000-level array', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(25, 'create_queue', 'policy delay 10,000-level array', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => ('{"delay": ' || repeat('[', 10000) || repeat(']', 10000) || '}')::jsonb)$s$),
	(26, 'create_queue', 'policy 10,000-level object', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => (repeat('{"delay": ', 10000) || '1' || repeat('}', 10000))::jsonb)$s$),
	(27, 'create_queue', 'policy delay -1', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": -1}')$s$),
	(28, 'create_queue', 'policy delay -0', 'ok', $s$SELECT queue.create_queue('h14_negzero', retry_policy => '{"delay": -0}')$s$),
	(29, 'create_queue', 'policy delay 1000000001', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": 1000000001}')$s$),
	(30, 'create_queue', 'policy delay 1e308', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": 1e308}')$s$),
	(31, 'create_queue', 'policy delay "NaN" (to_jsonb of NaN)', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => jsonb_build_object('delay', 'NaN'::numeric))$s$),
	(32, 'create_queue', 'policy delay "Infinity" (to_jsonb of float8)', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => jsonb_build_object('delay', 'Infinity'::float8))$s$),
	(33, 'create_queue', 'policy max_delay "-Infinity"', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => jsonb_build_object('max_delay', '-Infinity'::float8))$s$),
	(34, 'create_queue', 'policy factor 0.999999', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"factor": 0.999999}')$s$),
	(35, 'create_queue', 'policy factor 1000.000001', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"factor": 1000.000001}')$s$),
	(36, 'create_queue', 'policy delay "1" (string)', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": "1"}')$s$),
	(37, 'create_queue', 'policy delay true', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": true}')$s$),
	(38, 'create_queue', 'policy delay null', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": null}')$s$),
	(39, 'create_queue', 'policy delay {}', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": {}}')$s$),
	(40, 'create_queue', 'policy backoff FIXED', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"backoff": "FIXED"}')$s$),
	(41, 'create_queue', 'policy backoff ["fixed"]', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"backoff": ["fixed"]}')$s$),
	(42, 'create_queue', 'policy jitter injection', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => jsonb_build_object('jitter', $$none'; DROP TABLE h14_canary; --$$))$s$),
	(43, 'create_queue', 'policy unknown key "Delay"', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"Delay": 1}')$s$),
	(44, 'create_queue', 'policy unknown key ""', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"": 1}')$s$),
	(45, 'create_queue', 'policy duplicate keys, last -1', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": 1, "delay": -1}')$s$),
	(46, 'alter_queue', 'policy delay -1', '22023', $s$SELECT queue.alter_queue('h14_q', retry_policy => '{"delay": -1}')$s$),
	(47, 'alter_queue', 'max_attempts -1', '22023', $s$SELECT queue.alter_queue('h14_q', max_attempts => -1)$s$),
	(48, 'backoff_delay', 'attempt 0', '22023', $s$SELECT queue.backoff_delay('{}', 0)$s$),
	(49, 'backoff_delay', 'attempt -2147483648', '22023', $s$SELECT queue.backoff_delay('{}', -2147483648)$s$),
	(50, 'backoff_delay', 'attempt 2147483647, factor 1000', 'ok', $s$SELECT queue.backoff_delay('{"factor": 1000}', 2147483647)$s$),
	(51, 'backoff_delay', 'previous_delay -1 s', '22023', $s$SELECT queue.backoff_delay('{"jitter": "decorrelated"}', 2, '-1 second')$s$),
	(52, 'backoff_delay', 'previous_delay 100000 years', 'ok', $s$SELECT queue.backoff_delay('{"jitter": "decorrelated"}', 2, '100000 years')$s$),
	-- enqueue
	(60, 'enqueue', 'payload NULL', '22004', $s$SELECT queue.enqueue('h14_q', NULL)$s$),
	(61, 'enqueue', 'payload JSON null', '22023', $s$SELECT queue.enqueue('h14_q', 'null')$s$),
	(62, 'enqueue', 'payload array', '22023', $s$SELECT queue.enqueue('h14_q', '[{}]')$s$),
	(63, 'enqueue', 'payload string', '22023', $s$SELECT queue.enqueue('h14_q', '"{}"')$s$),
	(64, 'enqueue', 'payload number', '22023', $s$SELECT queue.enqueue('h14_q', '1e308')$s$),
	(65, 'enqueue', 'payload 10,000-level array', '22023', $s$SELECT queue.enqueue('h14_q', (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(66, 'enqueue', 'payload object holding 10,000-level array', 'ok', $s$SELECT queue.enqueue('h14_q', ('{"deep": ' || repeat('[', 10000) || repeat(']', 10000) || '}')::jsonb)$s$),
	(67, 'enqueue', 'payload 10,000-level object', 'ok', $s$SELECT queue.enqueue('h14_q', (repeat('{"d": ', 10000) || '{}' || repeat('}', 10000))::jsonb)$s$),
	(68, 'enqueue', 'payload over max_payload_bytes', '54000', $s$SELECT queue.enqueue('h14_q', jsonb_build_object('x', repeat('x', 1100000)))$s$),
	(69, 'enqueue', 'headers over max_payload_bytes', '54000', $s$SELECT queue.enqueue('h14_q', '{}', headers => jsonb_build_object('x', repeat('x', 1100000)))$s$),
	(70, 'enqueue', 'headers JSON null', '22023', $s$SELECT queue.enqueue('h14_q', '{}', headers => 'null')$s$),
	(71, 'enqueue', 'headers 10,000-level array', '22023', $s$SELECT queue.enqueue('h14_q', '{}', headers => (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(72, 'enqueue', 'headers object holding 10,000-level array', 'ok', $s$SELECT queue.enqueue('h14_q', '{}', headers => ('{"deep": ' || repeat('[', 10000) || repeat(']', 10000) || '}')::jsonb)$s$),
	(73, 'enqueue', 'payload with SQL and NUL-free escapes', 'ok', $s$SELECT queue.enqueue('h14_q', jsonb_build_object($$'; DROP TABLE h14_canary; --$$, E'back\\slash "q" \n'))$s$),
	(74, 'enqueue', 'priority NULL', '22004', $s$SELECT queue.enqueue('h14_q', '{}', priority => NULL)$s$),
	(75, 'enqueue', 'priority -2147483648', 'ok', $s$SELECT queue.enqueue('h14_q', '{}', priority => -2147483648)$s$),
	(76, 'enqueue', 'priority 2147483647', 'ok', $s$SELECT queue.enqueue('h14_q', '{}', priority => 2147483647)$s$),
	(77, 'enqueue', 'max_attempts 0', '22023', $s$SELECT queue.enqueue('h14_q', '{}', max_attempts => 0)$s$),
	(78, 'enqueue', 'max_attempts -1', '22023', $s$SELECT queue.enqueue('h14_q', '{}', max_attempts => -1)$s$),
	(79, 'enqueue', 'delay -1 us', '22023', $s$SELECT queue.enqueue('h14_q', '{}', delay => '-1 microsecond')$s$),
	(80, 'enqueue', 'delay 1 mon -31 days', '22023', $s$SELECT queue.enqueue('h14_q', '{}', delay => '1 mon -31 days')$s$),
	(81, 'enqueue', 'delay 1000000 years (beyond timestamptz)', '22008', $s$SELECT queue.enqueue('h14_q', '{}', delay => '1000000 years')$s$),
	(82, 'enqueue', 'run_at infinity', '22023', $s$SELECT queue.enqueue('h14_q', '{}', run_at => 'infinity')$s$),
	(83, 'enqueue', 'run_at -infinity', '22023', $s$SELECT queue.enqueue('h14_q', '{}', run_at => '-infinity')$s$),
	(84, 'enqueue', 'run_at and delay', '22023', $s$SELECT queue.enqueue('h14_q', '{}', run_at => now(), delay => '1s')$s$),
	(85, 'enqueue', 'run_at 4713 BC', 'ok', $s$SELECT queue.enqueue('h14_q', '{}', run_at => '4713-01-01 00:00:00+00 BC')$s$),
	(86, 'enqueue', 'retry_policy []', '22023', $s$SELECT queue.enqueue('h14_q', '{}', retry_policy => '[]')$s$),
	(87, 'enqueue', 'retry_policy 10,000-level array', '22023', $s$SELECT queue.enqueue('h14_q', '{}', retry_policy => (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(88, 'enqueue', 'retry_policy factor -1', '22023', $s$SELECT queue.enqueue('h14_q', '{}', retry_policy => '{"factor": -1}')$s$),
	(89, 'enqueue', 'retry_policy delay "NaN"', '22023', $s$SELECT queue.enqueue('h14_q', '{}', retry_policy => jsonb_build_object('delay', 'NaN'::float8))$s$),
	-- enqueue_many
	(100, 'enqueue_many', 'jobs NULL', '22004', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', NULL)$s$),
	(101, 'enqueue_many', 'jobs JSON null', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', 'null')$s$),
	(102, 'enqueue_many', 'jobs object', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '{"payload": {}}')$s$),
	(103, 'enqueue_many', 'jobs 10,000-level array', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(104, 'enqueue_many', 'element number', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[1]')$s$),
	(105, 'enqueue_many', 'element null', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[null]')$s$),
	(106, 'enqueue_many', 'unknown key "Payload"', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"Payload": {}}]')$s$),
	(107, 'enqueue_many', 'unknown key "__proto__"', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "__proto__": {}}]')$s$),
	(108, 'enqueue_many', 'payload missing', '22004', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{}]')$s$),
	(109, 'enqueue_many', 'payload 10,000-level array', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', ('[{"payload": ' || repeat('[', 10000) || repeat(']', 10000) || '}]')::jsonb)$s$),
	(110, 'enqueue_many', 'payload holding 10,000-level array', 'ok', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', ('[{"payload": {"deep": ' || repeat('[', 10000) || repeat(']', 10000) || '}}]')::jsonb)$s$),
	(111, 'enqueue_many', 'priority 2.5', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "priority": 2.5}]')$s$),
	(112, 'enqueue_many', 'priority 2147483648', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "priority": 2147483648}]')$s$),
	(114, 'enqueue_many', 'priority "5"', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "priority": "5"}]')$s$),
	(115, 'enqueue_many', 'priority "NaN"', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', jsonb_build_array(jsonb_build_object('payload', '{}'::jsonb, 'priority', 'NaN'::numeric)))$s$),
	(116, 'enqueue_many', 'priority 2.0', 'ok', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "priority": 2.0}]')$s$),
	(117, 'enqueue_many', 'max_attempts 0', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "max_attempts": 0}]')$s$),
	(119, 'enqueue_many', 'delay -1', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "delay": -1}]')$s$),
	(120, 'enqueue_many', 'delay 1e300', '22008', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "delay": 1e300}]')$s$),
	(122, 'enqueue_many', 'delay "1 fortnight"', '22007', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "delay": "1 fortnight"}]')$s$),
	(123, 'enqueue_many', 'delay "-1 s"', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "delay": "-1 s"}]')$s$),
	(124, 'enqueue_many', 'delay true', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "delay": true}]')$s$),
	(125, 'enqueue_many', 'run_at "infinity"', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "run_at": "infinity"}]')$s$),
	(126, 'enqueue_many', 'run_at injection', '22007', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', jsonb_build_array(jsonb_build_object('payload', '{}'::jsonb, 'run_at', $$now()'); DROP TABLE h14_canary; --$$)))$s$),
	(127, 'enqueue_many', 'run_at number', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "run_at": 0}]')$s$),
	(128, 'enqueue_many', 'dedup_key number', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "dedup_key": 1}]')$s$),
	(129, 'enqueue_many', 'group_key object', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "group_key": {}}]')$s$),
	(130, 'enqueue_many', 'retry_policy "{}" (string)', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "retry_policy": "{}"}]')$s$),
	(131, 'enqueue_many', 'bad 3rd element: all or nothing', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}}, {"payload": {}}, {"payload": []}]')$s$),
	(132, 'enqueue_many', 'payload over max_payload_bytes', '54000', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', jsonb_build_array(jsonb_build_object('payload', jsonb_build_object('x', repeat('x', 1100000)))))$s$),
	(133, 'enqueue_many', '10,001 jobs (max_batch_size 10000)', '54000', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', (SELECT jsonb_agg('{"payload": {}}'::jsonb) FROM generate_series(1, 10001)))$s$),
	-- claim
	(140, 'claim', 'batch_size 0', '22023', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', 0)$s$),
	(141, 'claim', 'batch_size -2147483648', '22023', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', -2147483648)$s$),
	(142, 'claim', 'batch_size 2147483647', '22023', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', 2147483647)$s$),
	(143, 'claim', 'batch_size NULL', '22004', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', NULL)$s$),
	(144, 'claim', 'lease 0', '22023', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', lease => '0')$s$),
	(145, 'claim', 'lease -1 day', '22023', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', lease => '-1 day')$s$),
	(146, 'claim', 'lease 1000000 years (over 100 years)', '22023', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', lease => '1000000 years')$s$),
	(147, 'claim', 'wait -1 us', '22023', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', wait => '-1 microsecond')$s$),
	(148, 'claim', 'wait 100 years with work there (capped)', 'ok', $s$SELECT count(*) FROM queue.claim('h14_q', 'w', wait => '100 years')$s$),
	-- settle
	(150, 'fail', 'retry_delay -1 s', '22023', $s$SELECT queue.fail(c.job_id, c.lease_token, 'x', retry_delay => '-1 s') FROM queue.claim('h14_f', 'w') c$s$),
	(151, 'fail', 'retry_delay 1000000 years', '22023', $s$SELECT queue.fail(c.job_id, c.lease_token, 'x', retry_delay => '1000000 years') FROM queue.claim('h14_f', 'w') c$s$),
	(152, 'fail', 'error over max_payload_bytes', '54000', $s$SELECT queue.fail(c.job_id, c.lease_token, repeat('e', 1100000)) FROM queue.claim('h14_f', 'w') c$s$),
	(153, 'fail', 'permanent NULL', '22004', $s$SELECT queue.fail(c.job_id, c.lease_token, 'x', permanent => NULL) FROM queue.claim('h14_f', 'w') c$s$),
	(154, 'complete', 'result over max_payload_bytes', '54000', $s$SELECT queue.complete(c.job_id, c.lease_token, jsonb_build_object('x', repeat('x', 1100000))) FROM queue.claim('h14_f', 'w') c$s$),
	(155, 'complete', 'result 10,000-level array', 'ok', $s$SELECT queue.complete(c.job_id, c.lease_token, (repeat('[', 10000) || repeat(']', 10000))::jsonb) FROM queue.claim('h14_f', 'w') c$s$),
	(156, 'complete', 'token of another job', 'QU001', $s$SELECT queue.complete(c.job_id + 1, c.lease_token) FROM queue.claim('h14_f', 'w') c$s$),
	(157, 'extend', 'lease 0', '22023', $s$SELECT queue.extend(c.job_id, c.lease_token, '0') FROM queue.claim('h14_f', 'w') c$s$),
	(158, 'extend', 'lease 1000000 years', '22023', $s$SELECT queue.extend(c.job_id, c.lease_token, '1000000 years') FROM queue.claim('h14_f', 'w') c$s$),
	(159, 'release', 'delay -1 s', '22023', $s$SELECT queue.release(c.job_id, c.lease_token, '-1 s') FROM queue.claim('h14_f', 'w') c$s$),
	(160, 'release', 'delay 1000000 years', '22023', $s$SELECT queue.release(c.job_id, c.lease_token, '1000000 years') FROM queue.claim('h14_f', 'w') c$s$),
	(161, 'complete_many', '2-D arrays', '2202E', $s$SELECT queue.complete_many('{{1}}', '{{00000000-0000-0000-0000-000000000000}}')$s$),
	(162, 'complete_many', 'lengths differ', '2202E', $s$SELECT queue.complete_many('{1,2}', '{00000000-0000-0000-0000-000000000000}')$s$),
	(163, 'fail_many', 'errors with a NULL', '22004', $s$SELECT count(*) FROM queue.fail_many('{1}', '{00000000-0000-0000-0000-000000000000}', '{NULL}')$s$),
	-- publish
	(170, 'publish', 'payload NULL', '22004', $s$SELECT queue.publish('h14_t', NULL)$s$),
	(171, 'publish', 'payload JSON null', '22023', $s$SELECT queue.publish('h14_t', 'null')$s$),
	(172, 'publish', 'payload 10,000-level array', '22023', $s$SELECT queue.publish('h14_t', (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(173, 'publish', 'payload holding 10,000-level array', 'ok', $s$SELECT queue.publish('h14_t', ('{"deep": ' || repeat('[', 10000) || repeat(']', 10000) || '}')::jsonb)$s$),
	(174, 'publish', 'headers 10,000-level array', '22023', $s$SELECT queue.publish('h14_t', '{}', headers => (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(175, 'publish', 'payload over max_payload_bytes', '54000', $s$SELECT queue.publish('h14_t', jsonb_build_object('x', repeat('x', 1100000)))$s$),
	(176, 'publish', 'headers over max_payload_bytes', '54000', $s$SELECT queue.publish('h14_t', '{}', headers => jsonb_build_object('x', repeat('x', 1100000)))$s$),
	(180, 'publish_many', 'events NULL', '22004', $s$SELECT count(*) FROM queue.publish_many('h14_t', NULL)$s$),
	(181, 'publish_many', 'events object', '22023', $s$SELECT count(*) FROM queue.publish_many('h14_t', '{"payload": {}}')$s$),
	(182, 'publish_many', 'events 10,000-level array', '22023', $s$SELECT count(*) FROM queue.publish_many('h14_t', (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(183, 'publish_many', 'element string', '22023', $s$SELECT count(*) FROM queue.publish_many('h14_t', '["{}"]')$s$),
	(184, 'publish_many', 'unknown key', '22023', $s$SELECT count(*) FROM queue.publish_many('h14_t', '[{"payload": {}, "Key": "k"}]')$s$),
	(185, 'publish_many', 'key number', '22023', $s$SELECT count(*) FROM queue.publish_many('h14_t', '[{"payload": {}, "key": 1}]')$s$),
	(186, 'publish_many', 'payload missing', '22004', $s$SELECT count(*) FROM queue.publish_many('h14_t', '[{"key": "k"}]')$s$),
	(187, 'publish_many', 'payload 10,000-level array', '22023', $s$SELECT count(*) FROM queue.publish_many('h14_t', ('[{"payload": ' || repeat('[', 10000) || repeat(']', 10000) || '}]')::jsonb)$s$),
	(188, 'publish_many', 'payload over max_payload_bytes', '54000', $s$SELECT count(*) FROM queue.publish_many('h14_t', jsonb_build_array(jsonb_build_object('payload', jsonb_build_object('x', repeat('x', 1100000)))))$s$),
	(189, 'publish_many', '10,001 events', '54000', $s$SELECT count(*) FROM queue.publish_many('h14_t', (SELECT jsonb_agg('{"payload": {}}'::jsonb) FROM generate_series(1, 10001)))$s$),
	(190, 'subscribe', 'queue and channel', '22023', $s$SELECT queue.subscribe('h14_t', queue => 'h14_q', channel => 'c')$s$),
	(191, 'create_topic', 'retention -1 s', '22023', $s$SELECT queue.create_topic('h14_x', retention => '-1 s')$s$),
	(192, 'create_topic', 'retention NULL', '22004', $s$SELECT queue.create_topic('h14_x', retention => NULL)$s$),
	(193, 'relay', 'batch_size 0', '22023', $s$SELECT queue.relay(0)$s$),
	(194, 'relay', 'batch_size 2147483647', '22023', $s$SELECT queue.relay(2147483647)$s$),
	(195, 'prune_events', 'batch_size -1', '22023', $s$SELECT queue.prune_events(-1)$s$),
	(196, 'create_queue', 'lease_timeout 1000000 years', '22023', $s$SELECT queue.create_queue('h14_x', lease_timeout => '1000000 years')$s$),
	(197, 'create_topic', 'retention 1000000 years', '22023', $s$SELECT queue.create_topic('h14_x', retention => '1000000 years')$s$),
	(198, 'create_queue', 'retry_policy delay 1e1000', '22023', $s$SELECT queue.create_queue('h14_x', retry_policy => '{"delay": 1e1000}')$s$),
	(199, 'enqueue_many', 'priority 1e1000', '22023', $s$SELECT count(*) FROM queue.enqueue_many('h14_q', '[{"payload": {}, "priority": 1e1000}]')$s$),
	-- sagas
	(200, 'define_saga', 'steps NULL', '22004', $s$SELECT queue.define_saga('h14_x', NULL)$s$),
	(201, 'define_saga', 'steps []', '22023', $s$SELECT queue.define_saga('h14_x', '[]')$s$),
	(202, 'define_saga', 'steps object', '22023', $s$SELECT queue.define_saga('h14_x', '{"name": "a", "queue": "h14_q"}')$s$),
	(203, 'define_saga', 'steps 10,000-level array', '22023', $s$SELECT queue.define_saga('h14_x', (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(204, 'define_saga', 'step name 10,000-level array', '22023', $s$SELECT queue.define_saga('h14_x', ('[{"queue": "h14_q", "name": ' || repeat('[', 10000) || repeat(']', 10000) || '}]')::jsonb)$s$),
	(205, 'define_saga', 'retry_policy 10,000-level array', '22023', $s$SELECT queue.define_saga('h14_x', ('[{"name": "a", "queue": "h14_q", "retry_policy": ' || repeat('[', 10000) || repeat(']', 10000) || '}]')::jsonb)$s$),
	(206, 'define_saga', 'step unknown key', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "Queue": "x"}]')$s$),
	(207, 'define_saga', 'duplicate step names', '42710', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q"}, {"name": "a", "queue": "h14_q"}]')$s$),
	(208, 'define_saga', 'max_attempts 0', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "max_attempts": 0}]')$s$),
	(209, 'define_saga', 'max_attempts 1.5', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "max_attempts": 1.5}]')$s$),
	(210, 'define_saga', 'max_attempts 1e1000', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "max_attempts": 1e1000}]')$s$),
	(211, 'define_saga', 'max_attempts "3"', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "max_attempts": "3"}]')$s$),
	(212, 'define_saga', 'timeout 0', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "timeout": 0}]')$s$),
	(213, 'define_saga', 'timeout -1', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "timeout": -1}]')$s$),
	(214, 'define_saga', 'timeout 1e300', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "timeout": 1e300}]')$s$),
	(215, 'define_saga', 'timeout "NaN"', '22023', $s$SELECT queue.define_saga('h14_x', jsonb_build_array(jsonb_build_object('name', 'a', 'queue', 'h14_q', 'timeout', 'NaN'::numeric)))$s$),
	(216, 'define_saga', 'deadline "Infinity"', '22023', $s$SELECT queue.define_saga('h14_x', jsonb_build_array(jsonb_build_object('name', 'a', 'queue', 'h14_q', 'deadline', 'Infinity'::float8)))$s$),
	(217, 'define_saga', 'deadline -1e-6', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q", "deadline": -1e-6}]')$s$),
	(218, 'define_saga', 'saga deadline -1 s', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q"}]', deadline => '-1 s')$s$),
	(219, 'define_saga', 'saga deadline 0', '22023', $s$SELECT queue.define_saga('h14_x', '[{"name": "a", "queue": "h14_q"}]', deadline => '0')$s$),
	(220, 'start_saga', 'input NULL', '22004', $s$SELECT queue.start_saga('h14_saga', NULL)$s$),
	(221, 'start_saga', 'input array', '22023', $s$SELECT queue.start_saga('h14_saga', '[]')$s$),
	(222, 'start_saga', 'input JSON null', '22023', $s$SELECT queue.start_saga('h14_saga', 'null')$s$),
	(223, 'start_saga', 'input 10,000-level array', '22023', $s$SELECT queue.start_saga('h14_saga', (repeat('[', 10000) || repeat(']', 10000))::jsonb)$s$),
	(224, 'start_saga', 'input holding 10,000-level array', 'ok', $s$SELECT queue.start_saga('h14_saga', ('{"deep": ' || repeat('[', 10000) || repeat(']', 10000) || '}')::jsonb)$s$),
	-- jobs and admin
	(230, 'list_jobs', 'page_size 0', '22023', $s$SELECT count(*) FROM queue.list_jobs('h14_q', page_size => 0)$s$),
	(231, 'list_jobs', 'page_size 2147483647', '22023', $s$SELECT count(*) FROM queue.list_jobs('h14_q', page_size => 2147483647)$s$),
	(232, 'get_job', 'id -9223372036854775808', 'ok', $s$SELECT count(*) FROM queue.get_job(-9223372036854775808)$s$),
	(233, 'cancel_job', 'id -1', '42704', $s$SELECT queue.cancel_job(-1)$s$),
	(234, 'grant_access', 'level injection', '22023', $s$SELECT queue.grant_access(current_user::regrole, $$admin'; DROP TABLE h14_canary; --$$)$s$)
) AS t(ord, fn, label, expected, stmt) ORDER BY ord) s;

-- JSON cannot spell NaN or Infinity: such documents never reach the
-- functions (PostgreSQL's jsonb input refuses them, 22P02).
SELECT '{"delay": NaN}'::jsonb;
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT '{"delay": Infinity}'::jsonb;
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- Every call and its outcome.  expected is what the README documents.
--
SELECT n, fn, label, expected, outcome, msg FROM h14_try ORDER BY n;

-- Any call whose outcome differs from the documented one (none).
SELECT n, fn, label, expected, outcome, msg FROM h14_try WHERE outcome <> expected ORDER BY n;

-- The totals.
SELECT count(*) AS inputs_tried,
	   count(*) FILTER (WHERE outcome <> 'ok') AS rejected,
	   count(*) FILTER (WHERE outcome = 'ok') AS accepted,
	   count(DISTINCT fn) AS functions
  FROM h14_try;
SELECT outcome, count(*) FROM h14_try GROUP BY outcome ORDER BY outcome;

--
-- Nothing appeared, nothing went: catalogs as at the baseline, the canary
-- still there, the schema intact.
--
SELECT b.what,
	   CASE b.what WHEN 'pg_class' THEN (SELECT count(*) FROM pg_class)
				   WHEN 'pg_proc' THEN (SELECT count(*) FROM pg_proc)
				   WHEN 'pg_namespace' THEN (SELECT count(*) FROM pg_namespace)
				   WHEN 'pg_type' THEN (SELECT count(*) FROM pg_type)
				   WHEN 'pg_trigger' THEN (SELECT count(*) FROM pg_trigger)
				   WHEN 'pg_roles' THEN (SELECT count(*) FROM pg_roles) END = b.n AS unchanged
  FROM h14_base b WHERE b.what LIKE 'pg\_%' ORDER BY b.what;
SELECT count(*) AS canary_rows, to_regclass('h14_canary') IS NOT NULL AS canary_exists,
	   to_regclass('queue.job') IS NOT NULL AS queue_job_exists FROM h14_canary;

--
-- The queue tables hold exactly what the accepted calls made.
--
-- Queues: the fixtures' and one per accepted create_queue, each name stored
-- as given; no rejected name became a queue.
SELECT (SELECT count(*) FROM queue.queue) - (SELECT n FROM h14_base WHERE what = 'queue') AS new_queues,
	   (SELECT count(*) FROM h14_try WHERE fn = 'create_queue' AND outcome = 'ok') AS accepted_creates;
SELECT bool_and(EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)) AS accepted_names_stored
  FROM h14_names n WHERE h14_expect_name(v) = 'ok';
SELECT count(*) AS rejected_names_stored
  FROM h14_names n WHERE h14_expect_name(v) <> 'ok'
   AND (EXISTS (SELECT 1 FROM queue.queue q WHERE q.name = v)
		OR EXISTS (SELECT 1 FROM queue.topic t WHERE t.name = v)
		OR EXISTS (SELECT 1 FROM queue.saga_definition d WHERE d.name = v));
SELECT name FROM queue.queue WHERE id > 0 AND name NOT IN (SELECT v FROM h14_names WHERE v IS NOT NULL)
   AND name LIKE 'h14\_%' ORDER BY name;
-- Jobs: one per accepted enqueue and start_saga, N per accepted
-- enqueue_many (its result), none from anything else.
SELECT (SELECT count(*) FROM queue.job) + (SELECT count(*) FROM queue.job_archive)
		 - (SELECT n FROM h14_base WHERE what = 'job') AS new_jobs,
	   (SELECT sum(CASE WHEN fn LIKE 'enqueue\_many%' THEN result::int ELSE 1 END)
		  FROM h14_try WHERE outcome = 'ok' AND (fn LIKE 'enqueue%' OR fn LIKE 'start\_saga%')) AS accepted_job_calls;
-- Topics, subscriptions, events and sagas likewise.
SELECT (SELECT count(*) FROM queue.topic) - (SELECT n FROM h14_base WHERE what = 'topic') AS new_topics,
	   (SELECT count(*) FROM h14_try WHERE fn = 'create_topic' AND outcome = 'ok') AS accepted_creates;
SELECT (SELECT count(*) FROM queue.subscription) - (SELECT n FROM h14_base WHERE what = 'subscription') AS new_subscriptions,
	   (SELECT count(*) FROM h14_try WHERE fn IN ('subscribe topic', 'subscribe channel') AND outcome = 'ok')
	   - (SELECT count(*) FROM h14_try WHERE fn = 'unsubscribe channel' AND outcome = 'ok') AS accepted_subscribes;
SELECT (SELECT count(*) FROM queue.event) + (SELECT count(*) FROM queue.event_archive)
		 - (SELECT n FROM h14_base WHERE what = 'event') AS new_events,
	   (SELECT sum(CASE WHEN fn LIKE 'publish\_many%' THEN result::int ELSE 1 END)
		  FROM h14_try WHERE outcome = 'ok' AND fn LIKE 'publish%') AS accepted_publishes;
SELECT (SELECT count(*) FROM queue.saga_definition) - (SELECT n FROM h14_base WHERE what = 'saga_definition') AS new_saga_versions,
	   (SELECT count(*) FROM h14_try WHERE fn LIKE 'define\_saga%' AND outcome = 'ok') AS accepted_defines;
SELECT (SELECT count(*) FROM queue.saga) - (SELECT n FROM h14_base WHERE what = 'saga') AS new_sagas,
	   (SELECT count(*) FROM h14_try WHERE fn LIKE 'start\_saga%' AND outcome = 'ok') AS accepted_starts;

-- Accepted hostile data is stored byte for byte.
SELECT
  (SELECT count(*) FROM h14_names n WHERE h14_expect_worker(v) = 'ok'
	  AND NOT EXISTS (SELECT 1 FROM queue.job j WHERE j.worker = n.v)) AS workers_missing,
  (SELECT count(*) FROM h14_names n WHERE v IS NOT NULL
	  AND NOT EXISTS (SELECT 1 FROM queue.jobs j WHERE j.queue = 'h14_f' AND j.errors @> jsonb_build_array(jsonb_build_object('error', n.v)))) AS errors_missing,
  (SELECT count(*) FROM h14_names n WHERE v IS NOT NULL AND h14_expect_key(v) = 'ok'
	  AND NOT EXISTS (SELECT 1 FROM queue.job j WHERE j.dedup_key = n.v)) AS dedup_keys_missing,
  (SELECT count(*) FROM h14_names n WHERE v IS NOT NULL AND h14_expect_key(v) = 'ok'
	  AND NOT EXISTS (SELECT 1 FROM queue.job j WHERE j.group_key = n.v)) AS group_keys_missing,
  (SELECT count(*) FROM h14_names n WHERE v IS NOT NULL AND h14_expect_key(v) = 'ok'
	  AND NOT EXISTS (SELECT 1 FROM queue.event e WHERE e.key = n.v)) AS event_keys_missing,
  (SELECT count(*) FROM h14_names n WHERE h14_expect_channel(v) = 'ok'
	  AND NOT EXISTS (SELECT 1 FROM queue.subscription s WHERE s.channel = n.v)
	  AND n.ord NOT IN (1, 10)) AS channels_missing,
  (SELECT count(*) FROM h14_names n WHERE v IS NOT NULL AND h14_expect_key(v) = 'ok'
	  AND NOT EXISTS (SELECT 1 FROM queue.saga s WHERE s.idempotency_key = n.v)) AS idempotency_keys_missing,
  (SELECT count(*) FROM h14_names n WHERE h14_expect_name(v) = 'ok'
	  AND NOT EXISTS (SELECT 1 FROM queue.saga_definition d WHERE d.name = 'h14_steps'
						 AND d.steps -> 0 ->> 'name' = n.v)) AS step_names_missing;
-- The deep payloads came back whole.
SELECT count(*) AS deep_payloads_intact FROM queue.job
 WHERE payload = ('{"deep": ' || repeat('[', 10000) || repeat(']', 10000) || '}')::jsonb;
SELECT payload = jsonb_build_object($$'; DROP TABLE h14_canary; --$$, E'back\\slash "q" \n') AS injection_payload_is_data
  FROM queue.job WHERE payload ? $$'; DROP TABLE h14_canary; --$$;

-- Clean up what this suite made (by id, so nothing else is touched).
SELECT count(*) AS dropped FROM (
	SELECT queue.drop_queue(name, force => true) FROM queue.queue
	 WHERE name IN (SELECT v FROM h14_names) OR name LIKE 'h14\_%') d;
DROP TABLE h14_canary, h14_try, h14_names, h14_base;
DROP FUNCTION h14, h14_expect_name, h14_expect_channel, h14_expect_lookup, h14_expect_key, h14_expect_worker;
