--
-- 08_config: what the extension installs around its API: tables dumped by
-- pg_dump, the queue.* settings, and the security of its functions.
--
\set SHOW_CONTEXT never

-- The tables and sequences holding users' data are extension
-- configuration, so pg_dump keeps their rows.
SELECT c.oid::regclass AS dumped, c.relkind
  FROM pg_extension e, unnest(e.extconfig) AS x(oid) JOIN pg_class c ON c.oid = x.oid
 WHERE e.extname = 'queue' ORDER BY c.oid::regclass::text;

--
-- Settings, with their defaults, bounds and contexts: the limits
-- max_batch_size and max_payload_bytes are superuser-only (the settings
-- of the background workers and waiting claims are tried in 09_monitoring).
--
SHOW queue.max_batch_size;
SHOW queue.max_payload_bytes;
SELECT name, setting, unit, boot_val, min_val, max_val, context, vartype
  FROM pg_settings WHERE name LIKE 'queue.%' ORDER BY name;
SET queue.max_batch_size = 0;
SET queue.max_batch_size = 1000001;
SET queue.max_payload_bytes = 15;
SET queue.max_payload_bytes = '2MB';
SHOW queue.max_payload_bytes;
RESET queue.max_payload_bytes;
SHOW queue.max_payload_bytes;
-- The queue prefix is reserved: a misspelt setting is an error, not a
-- silent placeholder.
SET queue.max_batch = 10;
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS placeholders FROM pg_settings WHERE name = 'queue.max_batch';
-- An ordinary role can change neither limit.
CREATE ROLE regress_queue_plain;
SET ROLE regress_queue_plain;
SET queue.max_batch_size = 5;
\echo sqlstate: :LAST_ERROR_SQLSTATE
SET queue.max_payload_bytes = '1kB';
SHOW queue.max_batch_size;
-- Nor, without grants, call anything or read anything.
SELECT queue.enqueue('q08', '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT USAGE ON SCHEMA queue TO regress_queue_plain;
SET ROLE regress_queue_plain;
SELECT queue.enqueue('q08', '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.claim('q08', 'w');
SELECT * FROM queue.list_queues();
SELECT count(*) FROM queue.job;
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) FROM queue.jobs;
RESET ROLE;
REVOKE USAGE ON SCHEMA queue FROM regress_queue_plain;
DROP ROLE regress_queue_plain;

--
-- Functions.  Every SECURITY DEFINER function pins its search_path to
-- pg_catalog, pg_temp (none is missing it) ...
--
SELECT count(*) > 20 AS many_definer_functions
  FROM pg_proc WHERE pronamespace = 'queue'::regnamespace AND prosecdef;
SELECT p.oid::regprocedure AS definer_without_pinned_path, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'queue'::regnamespace AND p.prosecdef
   AND p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp'];
-- ... and the functions that are not SECURITY DEFINER are internal helpers,
-- the access management run by the owner, and backoff_delay.
SELECT p.oid::regprocedure AS invoker_function, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'queue'::regnamespace AND NOT p.prosecdef
 ORDER BY p.oid::regprocedure::text;
-- Nothing in the schema is usable by PUBLIC: no function, table, view or
-- sequence.
SELECT p.oid::regprocedure AS public_function
  FROM pg_proc p
 WHERE p.pronamespace = 'queue'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE');
SELECT c.oid::regclass AS public_relation
  FROM pg_class c
 WHERE c.relnamespace = 'queue'::regnamespace AND c.relkind IN ('r', 'v', 'S')
   AND (has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
        OR (c.relkind = 'S' AND has_sequence_privilege('public', c.oid, 'USAGE, SELECT, UPDATE')));
SELECT has_schema_privilege('public', 'queue', 'USAGE') AS public_schema_usage;
