-- pgTAP: the API surface of the queue extension: every function with its
-- exact signature and result, which ones are SECURITY DEFINER, that every
-- one of those pins search_path, and that nothing is granted to PUBLIC.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
\set ON_ERROR_STOP true
SET client_min_messages = warning;
-- pg_regress sets IntervalStyle postgres_verbose; the texts below use postgres
SET IntervalStyle = postgres;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS queue;

BEGIN;
SELECT plan(297);

-- ----------------------------------------------------------------------
-- Every function, by name, and nothing else
-- ----------------------------------------------------------------------
SELECT functions_are('queue', ARRAY[
    '_access_functions',
    '_access_objects',
    '_check_batch_size',
    '_check_name',
    '_check_retry_policy',
    '_check_saga_steps',
    '_check_settings',
    '_check_target',
    '_count_outcome',
    '_lock_idle_job',
    '_lock_queue_name',
    '_lock_topic_name',
    '_promote_groups',
    '_queue_changed',
    '_queue_id',
    '_redrive',
    '_reset_stats',
    '_saga_abort',
    '_saga_cancel_job',
    '_saga_compensate_from',
    '_saga_enqueue',
    '_saga_job_gone',
    '_saga_job_settled',
    '_saga_log',
    '_archive_cancelled',
    '_saga_needs_attention',
    '_saga_stale_completions',
    '_saga_step_retrying',
    '_throughput',
    '_topic_id',
    '_waiting_claims',
    '_wake',
    '_worker_status',
    'alter_queue',
    'backoff_delay',
    'cancel_job',
    'cancel_saga',
    'claim',
    'complete',
    'complete_many',
    'complete_and_claim',
    'create_queue',
    'create_topic',
    'define_saga',
    'delete_job',
    'drop_queue',
    'drop_topic',
    'enqueue',
    'enqueue_many',
    'enqueue_payloads',
    'expire_leases',
    'expire_saga_deadlines',
    'extend',
    'fail',
    'fail_many',
    'get_event',
    'get_job',
    'grant_access',
    'list_dead',
    'list_jobs',
    'list_queues',
    'list_sagas',
    'list_subscriptions',
    'list_topics',
    'pause_queue',
    'prune',
    'prune_events',
    'publish',
    'publish_many',
    'purge_queue',
    'redrive',
    'relay',
    'release',
    'reschedule_job',
    'resume_queue',
    'retry_dead_events',
    'retry_saga_compensation',
    'revoke_access',
    'saga_timeline',
    'start_saga',
    'stuck_sagas',
    'subscribe',
    'unsubscribe']);
SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'queue'::regnamespace),
          84, 'schema queue has 84 functions (redrive is overloaded)');
SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
                   WHERE p.pronamespace = 'queue'::regnamespace AND p.prokind <> 'f'$$,
                'schema queue has no procedures, aggregates or window functions');

-- ----------------------------------------------------------------------
-- Each function: argument types and result type
-- ----------------------------------------------------------------------
SELECT has_function('queue', 'alter_queue', ARRAY['text', 'integer', 'jsonb', 'interval', 'interval', 'interval']::name[], 'function queue.alter_queue(text, integer, jsonb, interval, interval, interval) exists');
SELECT function_returns('queue', 'alter_queue', ARRAY['text', 'integer', 'jsonb', 'interval', 'interval', 'interval']::name[], 'void', 'queue.alter_queue(text, integer, jsonb, interval, interval, interval) returns void');
SELECT has_function('queue', 'backoff_delay', ARRAY['jsonb', 'integer', 'interval']::name[], 'function queue.backoff_delay(jsonb, integer, interval) exists');
SELECT function_returns('queue', 'backoff_delay', ARRAY['jsonb', 'integer', 'interval']::name[], 'interval', 'queue.backoff_delay(jsonb, integer, interval) returns interval');
SELECT has_function('queue', 'cancel_job', ARRAY['bigint']::name[], 'function queue.cancel_job(bigint) exists');
SELECT function_returns('queue', 'cancel_job', ARRAY['bigint']::name[], 'void', 'queue.cancel_job(bigint) returns void');
SELECT has_function('queue', 'claim', ARRAY['text', 'text', 'integer', 'interval', 'interval']::name[], 'function queue.claim(text, text, integer, interval, interval) exists');
SELECT function_returns('queue', 'claim', ARRAY['text', 'text', 'integer', 'interval', 'interval']::name[], 'setof record', 'queue.claim(text, text, integer, interval, interval) returns setof record');
SELECT has_function('queue', 'complete', ARRAY['bigint', 'uuid', 'jsonb']::name[], 'function queue.complete(bigint, uuid, jsonb) exists');
SELECT function_returns('queue', 'complete', ARRAY['bigint', 'uuid', 'jsonb']::name[], 'void', 'queue.complete(bigint, uuid, jsonb) returns void');
SELECT has_function('queue', 'complete_many', ARRAY['bigint[]', 'uuid[]', 'jsonb[]']::name[], 'function queue.complete_many(bigint[], uuid[], jsonb[]) exists');
SELECT function_returns('queue', 'complete_many', ARRAY['bigint[]', 'uuid[]', 'jsonb[]']::name[], 'integer', 'queue.complete_many(bigint[], uuid[], jsonb[]) returns integer');
SELECT has_function('queue', 'complete_and_claim', ARRAY['bigint[]', 'uuid[]', 'text', 'text', 'integer', 'interval', 'jsonb[]']::name[], 'function queue.complete_and_claim(bigint[], uuid[], text, text, integer, interval, jsonb[]) exists');
SELECT function_returns('queue', 'complete_and_claim', ARRAY['bigint[]', 'uuid[]', 'text', 'text', 'integer', 'interval', 'jsonb[]']::name[], 'setof record', 'queue.complete_and_claim(bigint[], uuid[], text, text, integer, interval, jsonb[]) returns setof record');
SELECT has_function('queue', 'create_queue', ARRAY['text', 'integer', 'jsonb', 'interval', 'interval', 'interval', 'boolean', 'boolean']::name[], 'function queue.create_queue(text, integer, jsonb, interval, interval, interval, boolean, boolean) exists');
SELECT function_returns('queue', 'create_queue', ARRAY['text', 'integer', 'jsonb', 'interval', 'interval', 'interval', 'boolean', 'boolean']::name[], 'integer', 'queue.create_queue(text, integer, jsonb, interval, interval, interval, boolean, boolean) returns integer');
SELECT has_function('queue', 'delete_job', ARRAY['bigint']::name[], 'function queue.delete_job(bigint) exists');
SELECT function_returns('queue', 'delete_job', ARRAY['bigint']::name[], 'void', 'queue.delete_job(bigint) returns void');
SELECT has_function('queue', 'drop_queue', ARRAY['text', 'boolean']::name[], 'function queue.drop_queue(text, boolean) exists');
SELECT function_returns('queue', 'drop_queue', ARRAY['text', 'boolean']::name[], 'void', 'queue.drop_queue(text, boolean) returns void');
SELECT has_function('queue', 'enqueue', ARRAY['text', 'jsonb', 'jsonb', 'timestamp with time zone', 'interval', 'integer', 'text', 'integer', 'jsonb', 'text']::name[], 'function queue.enqueue(text, jsonb, jsonb, timestamp with time zone, interval, integer, text, integer, jsonb, text) exists');
SELECT function_returns('queue', 'enqueue', ARRAY['text', 'jsonb', 'jsonb', 'timestamp with time zone', 'interval', 'integer', 'text', 'integer', 'jsonb', 'text']::name[], 'bigint', 'queue.enqueue(text, jsonb, jsonb, timestamp with time zone, interval, integer, text, integer, jsonb, text) returns bigint');
SELECT has_function('queue', 'enqueue_many', ARRAY['text', 'jsonb']::name[], 'function queue.enqueue_many(text, jsonb) exists');
SELECT function_returns('queue', 'enqueue_many', ARRAY['text', 'jsonb']::name[], 'setof bigint', 'queue.enqueue_many(text, jsonb) returns setof bigint');
SELECT has_function('queue', 'enqueue_payloads', ARRAY['text', 'jsonb[]', 'jsonb', 'timestamp with time zone', 'interval', 'integer', 'integer', 'jsonb', 'text']::name[], 'function queue.enqueue_payloads(text, jsonb[], jsonb, timestamp with time zone, interval, integer, integer, jsonb, text) exists');
SELECT function_returns('queue', 'enqueue_payloads', ARRAY['text', 'jsonb[]', 'jsonb', 'timestamp with time zone', 'interval', 'integer', 'integer', 'jsonb', 'text']::name[], 'setof bigint', 'queue.enqueue_payloads(text, jsonb[], jsonb, timestamp with time zone, interval, integer, integer, jsonb, text) returns setof bigint');
SELECT has_function('queue', 'expire_leases', ARRAY['integer']::name[], 'function queue.expire_leases(integer) exists');
SELECT function_returns('queue', 'expire_leases', ARRAY['integer']::name[], 'bigint', 'queue.expire_leases(integer) returns bigint');
SELECT has_function('queue', 'extend', ARRAY['bigint', 'uuid', 'interval']::name[], 'function queue.extend(bigint, uuid, interval) exists');
SELECT function_returns('queue', 'extend', ARRAY['bigint', 'uuid', 'interval']::name[], 'timestamp with time zone', 'queue.extend(bigint, uuid, interval) returns timestamp with time zone');
SELECT has_function('queue', 'fail', ARRAY['bigint', 'uuid', 'text', 'boolean', 'interval']::name[], 'function queue.fail(bigint, uuid, text, boolean, interval) exists');
SELECT function_returns('queue', 'fail', ARRAY['bigint', 'uuid', 'text', 'boolean', 'interval']::name[], 'text', 'queue.fail(bigint, uuid, text, boolean, interval) returns text');
SELECT has_function('queue', 'fail_many', ARRAY['bigint[]', 'uuid[]', 'text[]', 'boolean', 'interval']::name[], 'function queue.fail_many(bigint[], uuid[], text[], boolean, interval) exists');
SELECT function_returns('queue', 'fail_many', ARRAY['bigint[]', 'uuid[]', 'text[]', 'boolean', 'interval']::name[], 'setof record', 'queue.fail_many(bigint[], uuid[], text[], boolean, interval) returns setof record');
SELECT has_function('queue', 'get_job', ARRAY['bigint']::name[], 'function queue.get_job(bigint) exists');
SELECT function_returns('queue', 'get_job', ARRAY['bigint']::name[], 'setof queue.jobs', 'queue.get_job(bigint) returns setof queue.jobs');
SELECT has_function('queue', 'grant_access', ARRAY['regrole', 'text']::name[], 'function queue.grant_access(regrole, text) exists');
SELECT function_returns('queue', 'grant_access', ARRAY['regrole', 'text']::name[], 'void', 'queue.grant_access(regrole, text) returns void');
SELECT has_function('queue', 'list_dead', ARRAY['text', 'integer', 'bigint']::name[], 'function queue.list_dead(text, integer, bigint) exists');
SELECT function_returns('queue', 'list_dead', ARRAY['text', 'integer', 'bigint']::name[], 'setof queue.jobs', 'queue.list_dead(text, integer, bigint) returns setof queue.jobs');
SELECT has_function('queue', 'list_jobs', ARRAY['text', 'text', 'integer', 'bigint']::name[], 'function queue.list_jobs(text, text, integer, bigint) exists');
SELECT function_returns('queue', 'list_jobs', ARRAY['text', 'text', 'integer', 'bigint']::name[], 'setof queue.jobs', 'queue.list_jobs(text, text, integer, bigint) returns setof queue.jobs');
SELECT has_function('queue', 'list_queues', ARRAY[]::name[], 'function queue.list_queues() exists');
SELECT function_returns('queue', 'list_queues', ARRAY[]::name[], 'setof record', 'queue.list_queues() returns setof record');
SELECT has_function('queue', 'pause_queue', ARRAY['text']::name[], 'function queue.pause_queue(text) exists');
SELECT function_returns('queue', 'pause_queue', ARRAY['text']::name[], 'void', 'queue.pause_queue(text) returns void');
SELECT has_function('queue', 'prune', ARRAY['integer']::name[], 'function queue.prune(integer) exists');
SELECT function_returns('queue', 'prune', ARRAY['integer']::name[], 'bigint', 'queue.prune(integer) returns bigint');
SELECT has_function('queue', 'purge_queue', ARRAY['text']::name[], 'function queue.purge_queue(text) exists');
SELECT function_returns('queue', 'purge_queue', ARRAY['text']::name[], 'bigint', 'queue.purge_queue(text) returns bigint');
SELECT has_function('queue', 'redrive', ARRAY['bigint']::name[], 'function queue.redrive(bigint) exists');
SELECT function_returns('queue', 'redrive', ARRAY['bigint']::name[], 'void', 'queue.redrive(bigint) returns void');
SELECT has_function('queue', 'redrive', ARRAY['text', 'bigint[]']::name[], 'function queue.redrive(text, bigint[]) exists');
SELECT function_returns('queue', 'redrive', ARRAY['text', 'bigint[]']::name[], 'bigint', 'queue.redrive(text, bigint[]) returns bigint');
SELECT has_function('queue', 'release', ARRAY['bigint', 'uuid', 'interval']::name[], 'function queue.release(bigint, uuid, interval) exists');
SELECT function_returns('queue', 'release', ARRAY['bigint', 'uuid', 'interval']::name[], 'void', 'queue.release(bigint, uuid, interval) returns void');
SELECT has_function('queue', 'reschedule_job', ARRAY['bigint', 'timestamp with time zone']::name[], 'function queue.reschedule_job(bigint, timestamp with time zone) exists');
SELECT function_returns('queue', 'reschedule_job', ARRAY['bigint', 'timestamp with time zone']::name[], 'void', 'queue.reschedule_job(bigint, timestamp with time zone) returns void');
SELECT has_function('queue', 'resume_queue', ARRAY['text']::name[], 'function queue.resume_queue(text) exists');
SELECT function_returns('queue', 'resume_queue', ARRAY['text']::name[], 'void', 'queue.resume_queue(text) returns void');
SELECT has_function('queue', 'revoke_access', ARRAY['regrole', 'text']::name[], 'function queue.revoke_access(regrole, text) exists');
SELECT function_returns('queue', 'revoke_access', ARRAY['regrole', 'text']::name[], 'void', 'queue.revoke_access(regrole, text) returns void');
SELECT has_function('queue', '_access_functions', ARRAY['text']::name[], 'function queue._access_functions(text) exists');
SELECT function_returns('queue', '_access_functions', ARRAY['text']::name[], 'setof regprocedure', 'queue._access_functions(text) returns setof regprocedure');
SELECT has_function('queue', '_access_objects', ARRAY['text']::name[], 'function queue._access_objects(text) exists');
SELECT function_returns('queue', '_access_objects', ARRAY['text']::name[], 'setof text', 'queue._access_objects(text) returns setof text');
SELECT has_function('queue', '_check_name', ARRAY['text', 'text']::name[], 'function queue._check_name(text, text) exists');
SELECT function_returns('queue', '_check_name', ARRAY['text', 'text']::name[], 'text', 'queue._check_name(text, text) returns text');
SELECT has_function('queue', '_check_retry_policy', ARRAY['jsonb', 'boolean']::name[], 'function queue._check_retry_policy(jsonb, boolean) exists');
SELECT function_returns('queue', '_check_retry_policy', ARRAY['jsonb', 'boolean']::name[], 'jsonb', 'queue._check_retry_policy(jsonb, boolean) returns jsonb');
SELECT has_function('queue', '_check_settings', ARRAY['integer', 'interval', 'interval', 'interval']::name[], 'function queue._check_settings(integer, interval, interval, interval) exists');
SELECT function_returns('queue', '_check_settings', ARRAY['integer', 'interval', 'interval', 'interval']::name[], 'void', 'queue._check_settings(integer, interval, interval, interval) returns void');
SELECT has_function('queue', '_lock_idle_job', ARRAY['bigint', 'text']::name[], 'function queue._lock_idle_job(bigint, text) exists');
SELECT function_returns('queue', '_lock_idle_job', ARRAY['bigint', 'text']::name[], 'queue.job', 'queue._lock_idle_job(bigint, text) returns queue.job');
SELECT has_function('queue', '_lock_queue_name', ARRAY['text']::name[], 'function queue._lock_queue_name(text) exists');
SELECT function_returns('queue', '_lock_queue_name', ARRAY['text']::name[], 'void', 'queue._lock_queue_name(text) returns void');
SELECT has_function('queue', '_queue_id', ARRAY['text']::name[], 'function queue._queue_id(text) exists');
SELECT function_returns('queue', '_queue_id', ARRAY['text']::name[], 'integer', 'queue._queue_id(text) returns integer');
SELECT has_function('queue', '_queue_changed', ARRAY[]::name[], 'function queue._queue_changed() exists');
SELECT function_returns('queue', '_queue_changed', ARRAY[]::name[], 'trigger', 'queue._queue_changed() returns trigger');
SELECT has_function('queue', '_redrive', ARRAY['bigint[]']::name[], 'function queue._redrive(bigint[]) exists');
SELECT function_returns('queue', '_redrive', ARRAY['bigint[]']::name[], 'bigint', 'queue._redrive(bigint[]) returns bigint');
SELECT has_function('queue', '_wake', ARRAY['integer']::name[], 'function queue._wake(integer) exists');
SELECT function_returns('queue', '_wake', ARRAY['integer']::name[], 'void', 'queue._wake(integer) returns void');
SELECT has_function('queue', '_count_outcome', ARRAY['integer', 'bigint', 'bigint']::name[], 'function queue._count_outcome(integer, bigint, bigint) exists');
SELECT function_returns('queue', '_count_outcome', ARRAY['integer', 'bigint', 'bigint']::name[], 'void', 'queue._count_outcome(integer, bigint, bigint) returns void');
SELECT has_function('queue', '_reset_stats', ARRAY['integer']::name[], 'function queue._reset_stats(integer) exists');
SELECT function_returns('queue', '_reset_stats', ARRAY['integer']::name[], 'void', 'queue._reset_stats(integer) returns void');
SELECT has_function('queue', '_throughput', ARRAY[]::name[], 'function queue._throughput() exists');
SELECT function_returns('queue', '_throughput', ARRAY[]::name[], 'setof record', 'queue._throughput() returns setof record');
SELECT has_function('queue', '_waiting_claims', ARRAY['integer']::name[], 'function queue._waiting_claims(integer) exists');
SELECT function_returns('queue', '_waiting_claims', ARRAY['integer']::name[], 'integer', 'queue._waiting_claims(integer) returns integer');
SELECT has_function('queue', '_worker_status', ARRAY[]::name[], 'function queue._worker_status() exists');
SELECT function_returns('queue', '_worker_status', ARRAY[]::name[], 'setof record', 'queue._worker_status() returns setof record');
-- The outbox (topics, subscriptions, events) and ordered queues.
SELECT has_function('queue', 'create_topic', ARRAY['text', 'interval', 'boolean']::name[], 'function queue.create_topic(text, interval, boolean) exists');
SELECT function_returns('queue', 'create_topic', ARRAY['text', 'interval', 'boolean']::name[], 'integer', 'queue.create_topic(text, interval, boolean) returns integer');
SELECT has_function('queue', 'drop_topic', ARRAY['text', 'boolean']::name[], 'function queue.drop_topic(text, boolean) exists');
SELECT function_returns('queue', 'drop_topic', ARRAY['text', 'boolean']::name[], 'void', 'queue.drop_topic(text, boolean) returns void');
SELECT has_function('queue', 'get_event', ARRAY['bigint']::name[], 'function queue.get_event(bigint) exists');
SELECT function_returns('queue', 'get_event', ARRAY['bigint']::name[], 'setof queue.events', 'queue.get_event(bigint) returns setof queue.events');
SELECT has_function('queue', 'list_subscriptions', ARRAY['text']::name[], 'function queue.list_subscriptions(text) exists');
SELECT function_returns('queue', 'list_subscriptions', ARRAY['text']::name[], 'setof record', 'queue.list_subscriptions(text) returns setof record');
SELECT has_function('queue', 'list_topics', ARRAY[]::name[], 'function queue.list_topics() exists');
SELECT function_returns('queue', 'list_topics', ARRAY[]::name[], 'setof record', 'queue.list_topics() returns setof record');
SELECT has_function('queue', 'prune_events', ARRAY['integer']::name[], 'function queue.prune_events(integer) exists');
SELECT function_returns('queue', 'prune_events', ARRAY['integer']::name[], 'bigint', 'queue.prune_events(integer) returns bigint');
SELECT has_function('queue', 'publish', ARRAY['text', 'jsonb', 'text', 'jsonb']::name[], 'function queue.publish(text, jsonb, text, jsonb) exists');
SELECT function_returns('queue', 'publish', ARRAY['text', 'jsonb', 'text', 'jsonb']::name[], 'bigint', 'queue.publish(text, jsonb, text, jsonb) returns bigint');
SELECT has_function('queue', 'publish_many', ARRAY['text', 'jsonb']::name[], 'function queue.publish_many(text, jsonb) exists');
SELECT function_returns('queue', 'publish_many', ARRAY['text', 'jsonb']::name[], 'setof bigint', 'queue.publish_many(text, jsonb) returns setof bigint');
SELECT has_function('queue', 'relay', ARRAY['integer']::name[], 'function queue.relay(integer) exists');
SELECT function_returns('queue', 'relay', ARRAY['integer']::name[], 'integer', 'queue.relay(integer) returns integer');
SELECT has_function('queue', 'retry_dead_events', ARRAY['text', 'bigint[]']::name[], 'function queue.retry_dead_events(text, bigint[]) exists');
SELECT function_returns('queue', 'retry_dead_events', ARRAY['text', 'bigint[]']::name[], 'bigint', 'queue.retry_dead_events(text, bigint[]) returns bigint');
SELECT has_function('queue', 'subscribe', ARRAY['text', 'text', 'text']::name[], 'function queue.subscribe(text, text, text) exists');
SELECT function_returns('queue', 'subscribe', ARRAY['text', 'text', 'text']::name[], 'integer', 'queue.subscribe(text, text, text) returns integer');
SELECT has_function('queue', 'unsubscribe', ARRAY['text', 'text', 'text']::name[], 'function queue.unsubscribe(text, text, text) exists');
SELECT function_returns('queue', 'unsubscribe', ARRAY['text', 'text', 'text']::name[], 'void', 'queue.unsubscribe(text, text, text) returns void');
SELECT has_function('queue', '_check_batch_size', ARRAY['integer']::name[], 'function queue._check_batch_size(integer) exists');
SELECT function_returns('queue', '_check_batch_size', ARRAY['integer']::name[], 'void', 'queue._check_batch_size(integer) returns void');
SELECT has_function('queue', '_check_target', ARRAY['text', 'text']::name[], 'function queue._check_target(text, text) exists');
SELECT function_returns('queue', '_check_target', ARRAY['text', 'text']::name[], 'void', 'queue._check_target(text, text) returns void');
SELECT has_function('queue', '_lock_topic_name', ARRAY['text']::name[], 'function queue._lock_topic_name(text) exists');
SELECT function_returns('queue', '_lock_topic_name', ARRAY['text']::name[], 'void', 'queue._lock_topic_name(text) returns void');
SELECT has_function('queue', '_promote_groups', ARRAY['integer', 'text[]']::name[], 'function queue._promote_groups(integer, text[]) exists');
SELECT function_returns('queue', '_promote_groups', ARRAY['integer', 'text[]']::name[], 'integer', 'queue._promote_groups(integer, text[]) returns integer');
SELECT has_function('queue', '_topic_id', ARRAY['text']::name[], 'function queue._topic_id(text) exists');
SELECT function_returns('queue', '_topic_id', ARRAY['text']::name[], 'integer', 'queue._topic_id(text) returns integer');
-- sagas
CREATE TEMP TABLE saga_fn (f name, a name[], r text);
INSERT INTO saga_fn VALUES
               ('define_saga', ARRAY['text', 'jsonb', 'interval']::name[], 'integer'),
               ('list_sagas', ARRAY[]::name[], 'setof record'),
               ('start_saga', ARRAY['text', 'jsonb', 'text']::name[], 'bigint'),
               ('cancel_saga', ARRAY['bigint']::name[], 'text'),
               ('retry_saga_compensation', ARRAY['bigint']::name[], 'bigint'),
               ('expire_saga_deadlines', ARRAY['integer']::name[], 'bigint'),
               ('saga_timeline', ARRAY['bigint']::name[], 'setof record'),
               ('stuck_sagas', ARRAY['interval']::name[], 'setof queue.sagas'),
               ('_check_saga_steps', ARRAY['jsonb']::name[], 'jsonb'),
               ('_saga_abort', ARRAY['bigint', 'text']::name[], 'text'),
               ('_saga_cancel_job', ARRAY['queue.job']::name[], 'void'),
               ('_saga_compensate_from', ARRAY['bigint', 'integer']::name[], 'void'),
               ('_saga_enqueue', ARRAY['queue.saga', 'integer', 'boolean']::name[], 'bigint'),
               ('_saga_job_gone', ARRAY['queue.job', 'text']::name[], 'void'),
               ('_saga_job_settled', ARRAY['bigint', 'integer', 'boolean', 'bigint', 'integer', 'text', 'jsonb', 'text']::name[], 'void'),
               ('_saga_log', ARRAY['bigint', 'integer', 'text', 'text', 'text', 'bigint', 'integer', 'jsonb']::name[], 'void'),
               ('_saga_needs_attention', ARRAY['queue.saga', 'integer', 'text']::name[], 'void'),
               ('_saga_stale_completions', ARRAY['integer']::name[], 'bigint'),
               ('_saga_step_retrying', ARRAY['bigint']::name[], 'void');
SELECT has_function('queue', f, a, format('function queue.%s(%s) exists', f, array_to_string(a, ', ')))
  FROM saga_fn;
SELECT function_returns('queue', f, a, r, format('queue.%s(%s) returns %s', f, array_to_string(a, ', '), r))
  FROM saga_fn;

-- The exact signatures as a caller sees them: argument names, defaults and
-- the TABLE columns.
SELECT set_eq(
    $$SELECT p.proname::text, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid)
        FROM pg_proc p WHERE p.pronamespace = 'queue'::regnamespace$$,
    $$VALUES
        ('alter_queue',
         'name text, max_attempts integer DEFAULT NULL::integer, retry_policy jsonb DEFAULT NULL::jsonb, lease_timeout interval DEFAULT NULL::interval, retention interval DEFAULT NULL::interval, dead_retention interval DEFAULT NULL::interval',
         'void'),
        ('backoff_delay',
         'retry_policy jsonb, attempt integer, previous_delay interval DEFAULT NULL::interval',
         'interval'),
        ('cancel_job',
         'job_id bigint',
         'void'),
        ('claim',
         'queue text, worker text, batch_size integer DEFAULT 1, lease interval DEFAULT NULL::interval, wait interval DEFAULT NULL::interval',
         'TABLE(job_id bigint, lease_token uuid, payload jsonb, headers jsonb, attempt integer, max_attempts integer, priority integer, dedup_key text, enqueued_at timestamp with time zone, lease_expires_at timestamp with time zone)'),
        ('complete',
         'job_id bigint, lease_token uuid, result jsonb DEFAULT NULL::jsonb',
         'void'),
        ('complete_many',
         'job_ids bigint[], lease_tokens uuid[], results jsonb[] DEFAULT NULL::jsonb[]',
         'integer'),
        ('complete_and_claim',
         'job_ids bigint[], lease_tokens uuid[], queue text, worker text, batch_size integer DEFAULT 1, lease interval DEFAULT NULL::interval, results jsonb[] DEFAULT NULL::jsonb[]',
         'TABLE(job_id bigint, lease_token uuid, payload jsonb, headers jsonb, attempt integer, max_attempts integer, priority integer, dedup_key text, enqueued_at timestamp with time zone, lease_expires_at timestamp with time zone)'),
        ('create_queue',
         'name text, max_attempts integer DEFAULT 5, retry_policy jsonb DEFAULT ''{}''::jsonb, lease_timeout interval DEFAULT ''00:00:30''::interval, retention interval DEFAULT ''1 day''::interval, dead_retention interval DEFAULT ''30 days''::interval, if_not_exists boolean DEFAULT false, ordered boolean DEFAULT false',
         'integer'),
        ('delete_job',
         'job_id bigint',
         'void'),
        ('drop_queue',
         'name text, force boolean DEFAULT false',
         'void'),
        ('enqueue',
         'queue text, payload jsonb, headers jsonb DEFAULT NULL::jsonb, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, delay interval DEFAULT NULL::interval, priority integer DEFAULT 0, dedup_key text DEFAULT NULL::text, max_attempts integer DEFAULT NULL::integer, retry_policy jsonb DEFAULT NULL::jsonb, group_key text DEFAULT NULL::text',
         'bigint'),
        ('enqueue_many',
         'queue text, jobs jsonb',
         'SETOF bigint'),
        ('enqueue_payloads',
         'queue text, payloads jsonb[], headers jsonb DEFAULT NULL::jsonb, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, delay interval DEFAULT NULL::interval, priority integer DEFAULT 0, max_attempts integer DEFAULT NULL::integer, retry_policy jsonb DEFAULT NULL::jsonb, group_key text DEFAULT NULL::text',
         'SETOF bigint'),
        ('expire_leases',
         'batch_size integer DEFAULT 1000',
         'bigint'),
        ('extend',
         'job_id bigint, lease_token uuid, lease interval DEFAULT NULL::interval',
         'timestamp with time zone'),
        ('fail',
         'job_id bigint, lease_token uuid, error text, permanent boolean DEFAULT false, retry_delay interval DEFAULT NULL::interval',
         'text'),
        ('fail_many',
         'job_ids bigint[], lease_tokens uuid[], errors text[], permanent boolean DEFAULT false, retry_delay interval DEFAULT NULL::interval',
         'TABLE(job_id bigint, state text)'),
        ('get_job',
         'job_id bigint',
         'SETOF queue.jobs'),
        ('grant_access',
         'role_name regrole, access text',
         'void'),
        ('list_dead',
         'queue text, page_size integer DEFAULT 100, after_id bigint DEFAULT 0',
         'SETOF queue.jobs'),
        ('list_jobs',
         'queue text, state text DEFAULT NULL::text, page_size integer DEFAULT 100, after_id bigint DEFAULT 0',
         'SETOF queue.jobs'),
        ('list_queues',
         '',
         'TABLE(name text, max_attempts integer, retry_policy jsonb, lease_timeout interval, retention interval, dead_retention interval, paused boolean, ordered boolean, created_at timestamp with time zone, updated_at timestamp with time zone)'),
        ('pause_queue',
         'name text',
         'void'),
        ('prune',
         'batch_size integer DEFAULT 10000',
         'bigint'),
        ('purge_queue',
         'name text',
         'bigint'),
        ('redrive',
         'job_id bigint',
         'void'),
        ('redrive',
         'queue text, job_ids bigint[] DEFAULT NULL::bigint[]',
         'bigint'),
        ('release',
         'job_id bigint, lease_token uuid, delay interval DEFAULT NULL::interval',
         'void'),
        ('reschedule_job',
         'job_id bigint, run_at timestamp with time zone',
         'void'),
        ('resume_queue',
         'name text',
         'void'),
        ('revoke_access',
         'role_name regrole, access text',
         'void'),
        ('_access_functions',
         'access text',
         'SETOF regprocedure'),
        ('_access_objects',
         'access text',
         'SETOF text'),
        ('_check_name',
         'name text, what text DEFAULT ''queue''::text',
         'text'),
        ('_check_retry_policy',
         'policy jsonb, complete boolean DEFAULT true',
         'jsonb'),
        ('_check_settings',
         'max_attempts integer, lease_timeout interval, retention interval, dead_retention interval',
         'void'),
        ('_lock_idle_job',
         'job_id bigint, action text',
         'queue.job'),
        ('_lock_queue_name',
         'name text',
         'void'),
        ('_queue_id',
         'queue_name text',
         'integer'),
        ('_queue_changed',
         '',
         'trigger'),
        ('_redrive',
         'ids bigint[]',
         'bigint'),
        ('_wake',
         'queue_id integer',
         'void'),
        ('_count_outcome',
         'queue_id integer, completed bigint, failed bigint',
         'void'),
        ('_reset_stats',
         'queue_id integer',
         'void'),
        ('_throughput',
         '',
         'TABLE(queue_id integer, completed_last_minute bigint, failed_last_minute bigint)'),
        ('_waiting_claims',
         'queue_id integer',
         'integer'),
        ('_worker_status',
         '',
         'TABLE(dboid oid, pid integer, state text, started_at timestamp with time zone, last_activity timestamp with time zone, events_relayed bigint, leases_expired bigint, jobs_pruned bigint, events_pruned bigint, errors bigint)'),
        ('create_topic',
         'name text, retention interval DEFAULT ''1 day''::interval, if_not_exists boolean DEFAULT false',
         'integer'),
        ('drop_topic',
         'name text, force boolean DEFAULT false',
         'void'),
        ('get_event',
         'event_id bigint',
         'SETOF queue.events'),
        ('list_subscriptions',
         'topic text DEFAULT NULL::text',
         'TABLE(id integer, topic text, queue text, channel text, created_at timestamp with time zone)'),
        ('list_topics',
         '',
         'TABLE(name text, retention interval, subscriptions bigint, created_at timestamp with time zone)'),
        ('prune_events',
         'batch_size integer DEFAULT 10000',
         'bigint'),
        ('publish',
         'topic text, payload jsonb, key text DEFAULT NULL::text, headers jsonb DEFAULT NULL::jsonb',
         'bigint'),
        ('publish_many',
         'topic text, events jsonb',
         'SETOF bigint'),
        ('relay',
         'batch_size integer DEFAULT NULL::integer',
         'integer'),
        ('retry_dead_events',
         'topic text, event_ids bigint[] DEFAULT NULL::bigint[]',
         'bigint'),
        ('subscribe',
         'topic text, queue text DEFAULT NULL::text, channel text DEFAULT NULL::text',
         'integer'),
        ('unsubscribe',
         'topic text, queue text DEFAULT NULL::text, channel text DEFAULT NULL::text',
         'void'),
        ('_check_target',
         'queue_name text, channel text',
         'void'),
        ('_check_batch_size',
         'batch_size integer',
         'void'),
        ('_lock_topic_name',
         'name text',
         'void'),
        ('_promote_groups',
         'queue_id integer, group_keys text[]',
         'integer'),
        ('_topic_id',
         'topic_name text',
         'integer'),
        ('define_saga',
         'name text, steps jsonb, deadline interval DEFAULT NULL::interval',
         'integer'),
        ('list_sagas',
         '',
         'TABLE(name text, version integer, steps jsonb, deadline interval, created_at timestamp with time zone)'),
        ('start_saga',
         'saga_type text, input jsonb DEFAULT ''{}''::jsonb, idempotency_key text DEFAULT NULL::text',
         'bigint'),
        ('cancel_saga',
         'saga_id bigint',
         'text'),
        ('retry_saga_compensation',
         'saga_id bigint',
         'bigint'),
        ('expire_saga_deadlines',
         'batch_size integer DEFAULT 1000',
         'bigint'),
        ('saga_timeline',
         'saga_id bigint',
         'TABLE(at timestamp with time zone, step text, kind text, event text, job_id bigint, attempts integer, detail jsonb)'),
        ('stuck_sagas',
         'older_than interval DEFAULT ''01:00:00''::interval',
         'SETOF queue.sagas'),
        ('_check_saga_steps',
         'steps jsonb',
         'jsonb'),
        ('_saga_abort',
         'saga_id bigint, reason text',
         'text'),
        ('_saga_cancel_job',
         'j queue.job',
         'void'),
        ('_saga_compensate_from',
         'saga_id bigint, upto integer',
         'void'),
        ('_saga_enqueue',
         's queue.saga, step integer, compensation boolean',
         'bigint'),
        ('_saga_job_gone',
         'j queue.job, why text',
         'void'),
        ('_saga_job_settled',
         'saga_id bigint, step integer, compensation boolean, job_id bigint, attempts integer, outcome text, result jsonb, error text',
         'void'),
        ('_saga_log',
         'saga_id bigint, step integer, step_name text, kind text, event text, job_id bigint DEFAULT NULL::bigint, attempts integer DEFAULT NULL::integer, detail jsonb DEFAULT NULL::jsonb',
         'void'),
        ('_saga_needs_attention',
         's queue.saga, k integer, error text',
         'void'),
        ('_archive_cancelled',
         'job_id bigint',
         'void'),
        ('_saga_stale_completions',
         'definition_id integer',
         'bigint'),
        ('_saga_step_retrying',
         'job_id bigint',
         'void')
    $$,
    'every function has exactly the documented argument names, defaults and result');

-- ----------------------------------------------------------------------
-- SECURITY DEFINER: every function that touches the tables on behalf of a
-- caller; not the internal helpers (only called from the definer
-- functions), not backoff_delay (pure computation), and never
-- grant_access/revoke_access (they must run with the caller's rights).
-- ----------------------------------------------------------------------
SELECT is_definer('queue', f, a, format('queue.%s(%s) is SECURITY DEFINER', f, array_to_string(a, ', ')))
  FROM (VALUES ('alter_queue', ARRAY['text', 'integer', 'jsonb', 'interval', 'interval', 'interval']::name[]),
       ('cancel_job', ARRAY['bigint']::name[]),
       ('claim', ARRAY['text', 'text', 'integer', 'interval', 'interval']::name[]),
       ('complete', ARRAY['bigint', 'uuid', 'jsonb']::name[]),
       ('complete_many', ARRAY['bigint[]', 'uuid[]', 'jsonb[]']::name[]),
       ('complete_and_claim', ARRAY['bigint[]', 'uuid[]', 'text', 'text', 'integer', 'interval', 'jsonb[]']::name[]),
       ('create_queue', ARRAY['text', 'integer', 'jsonb', 'interval', 'interval', 'interval', 'boolean', 'boolean']::name[]),
       ('delete_job', ARRAY['bigint']::name[]),
       ('drop_queue', ARRAY['text', 'boolean']::name[]),
       ('enqueue', ARRAY['text', 'jsonb', 'jsonb', 'timestamp with time zone', 'interval', 'integer', 'text', 'integer', 'jsonb', 'text']::name[]),
       ('enqueue_many', ARRAY['text', 'jsonb']::name[]),
       ('enqueue_payloads', ARRAY['text', 'jsonb[]', 'jsonb', 'timestamp with time zone', 'interval', 'integer', 'integer', 'jsonb', 'text']::name[]),
       ('expire_leases', ARRAY['integer']::name[]),
       ('extend', ARRAY['bigint', 'uuid', 'interval']::name[]),
       ('fail', ARRAY['bigint', 'uuid', 'text', 'boolean', 'interval']::name[]),
       ('fail_many', ARRAY['bigint[]', 'uuid[]', 'text[]', 'boolean', 'interval']::name[]),
       ('get_job', ARRAY['bigint']::name[]),
       ('list_dead', ARRAY['text', 'integer', 'bigint']::name[]),
       ('list_jobs', ARRAY['text', 'text', 'integer', 'bigint']::name[]),
       ('list_queues', ARRAY[]::name[]),
       ('pause_queue', ARRAY['text']::name[]),
       ('prune', ARRAY['integer']::name[]),
       ('purge_queue', ARRAY['text']::name[]),
       ('redrive', ARRAY['bigint']::name[]),
       ('redrive', ARRAY['text', 'bigint[]']::name[]),
       ('release', ARRAY['bigint', 'uuid', 'interval']::name[]),
       ('reschedule_job', ARRAY['bigint', 'timestamp with time zone']::name[]),
       ('resume_queue', ARRAY['text']::name[]),
       ('create_topic', ARRAY['text', 'interval', 'boolean']::name[]),
       ('drop_topic', ARRAY['text', 'boolean']::name[]),
       ('get_event', ARRAY['bigint']::name[]),
       ('list_subscriptions', ARRAY['text']::name[]),
       ('list_topics', ARRAY[]::name[]),
       ('prune_events', ARRAY['integer']::name[]),
       ('publish', ARRAY['text', 'jsonb', 'text', 'jsonb']::name[]),
       ('publish_many', ARRAY['text', 'jsonb']::name[]),
       ('relay', ARRAY['integer']::name[]),
       ('retry_dead_events', ARRAY['text', 'bigint[]']::name[]),
       ('subscribe', ARRAY['text', 'text', 'text']::name[]),
       ('unsubscribe', ARRAY['text', 'text', 'text']::name[]),
       ('define_saga', ARRAY['text', 'jsonb', 'interval']::name[]),
       ('list_sagas', ARRAY[]::name[]),
       ('start_saga', ARRAY['text', 'jsonb', 'text']::name[]),
       ('cancel_saga', ARRAY['bigint']::name[]),
       ('retry_saga_compensation', ARRAY['bigint']::name[]),
       ('expire_saga_deadlines', ARRAY['integer']::name[]),
       ('saga_timeline', ARRAY['bigint']::name[]),
       ('stuck_sagas', ARRAY['interval']::name[])) v(f, a);
SELECT isnt_definer('queue', f, a, format('queue.%s(%s) is not SECURITY DEFINER', f, array_to_string(a, ', ')))
  FROM (VALUES ('backoff_delay', ARRAY['jsonb', 'integer', 'interval']::name[]),
       ('grant_access', ARRAY['regrole', 'text']::name[]),
       ('revoke_access', ARRAY['regrole', 'text']::name[]),
       ('_access_functions', ARRAY['text']::name[]),
       ('_access_objects', ARRAY['text']::name[]),
       ('_check_name', ARRAY['text', 'text']::name[]),
       ('_check_retry_policy', ARRAY['jsonb', 'boolean']::name[]),
       ('_check_settings', ARRAY['integer', 'interval', 'interval', 'interval']::name[]),
       ('_lock_idle_job', ARRAY['bigint', 'text']::name[]),
       ('_lock_queue_name', ARRAY['text']::name[]),
       ('_queue_id', ARRAY['text']::name[]),
       ('_queue_changed', ARRAY[]::name[]),
       ('_redrive', ARRAY['bigint[]']::name[]),
       ('_wake', ARRAY['integer']::name[]),
       ('_count_outcome', ARRAY['integer', 'bigint', 'bigint']::name[]),
       ('_reset_stats', ARRAY['integer']::name[]),
       ('_throughput', ARRAY[]::name[]),
       ('_waiting_claims', ARRAY['integer']::name[]),
       ('_worker_status', ARRAY[]::name[]),
       ('_check_target', ARRAY['text', 'text']::name[]),
       ('_check_batch_size', ARRAY['integer']::name[]),
       ('_lock_topic_name', ARRAY['text']::name[]),
       ('_promote_groups', ARRAY['integer', 'text[]']::name[]),
       ('_topic_id', ARRAY['text']::name[]),
       ('_check_saga_steps', ARRAY['jsonb']::name[]),
       ('_saga_abort', ARRAY['bigint', 'text']::name[]),
       ('_saga_cancel_job', ARRAY['queue.job']::name[]),
       ('_saga_compensate_from', ARRAY['bigint', 'integer']::name[]),
       ('_saga_enqueue', ARRAY['queue.saga', 'integer', 'boolean']::name[]),
       ('_saga_job_gone', ARRAY['queue.job', 'text']::name[]),
       ('_saga_job_settled', ARRAY['bigint', 'integer', 'boolean', 'bigint', 'integer', 'text', 'jsonb', 'text']::name[]),
       ('_saga_log', ARRAY['bigint', 'integer', 'text', 'text', 'text', 'bigint', 'integer', 'jsonb']::name[]),
       ('_saga_needs_attention', ARRAY['queue.saga', 'integer', 'text']::name[]),
       ('_archive_cancelled', ARRAY['bigint']::name[]),
       ('_saga_stale_completions', ARRAY['integer']::name[]),
       ('_saga_step_retrying', ARRAY['bigint']::name[])) v(f, a);
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace AND p.prosecdef$$,
    ARRAY['queue.alter_queue(text,integer,jsonb,interval,interval,interval)',
          'queue.cancel_job(bigint)',
          'queue.claim(text,text,integer,interval,interval)',
          'queue.complete(bigint,uuid,jsonb)',
          'queue.complete_many(bigint[],uuid[],jsonb[])',
          'queue.complete_and_claim(bigint[],uuid[],text,text,integer,interval,jsonb[])',
          'queue.create_queue(text,integer,jsonb,interval,interval,interval,boolean,boolean)',
          'queue.delete_job(bigint)',
          'queue.drop_queue(text,boolean)',
          'queue.enqueue(text,jsonb,jsonb,timestamp with time zone,interval,integer,text,integer,jsonb,text)',
          'queue.enqueue_many(text,jsonb)',
          'queue.enqueue_payloads(text,jsonb[],jsonb,timestamp with time zone,interval,integer,integer,jsonb,text)',
          'queue.expire_leases(integer)',
          'queue.extend(bigint,uuid,interval)',
          'queue.fail(bigint,uuid,text,boolean,interval)',
          'queue.fail_many(bigint[],uuid[],text[],boolean,interval)',
          'queue.get_job(bigint)',
          'queue.list_dead(text,integer,bigint)',
          'queue.list_jobs(text,text,integer,bigint)',
          'queue.list_queues()',
          'queue.pause_queue(text)',
          'queue.prune(integer)',
          'queue.purge_queue(text)',
          'queue.redrive(bigint)',
          'queue.redrive(text,bigint[])',
          'queue.release(bigint,uuid,interval)',
          'queue.reschedule_job(bigint,timestamp with time zone)',
          'queue.resume_queue(text)',
          'queue.create_topic(text,interval,boolean)',
          'queue.drop_topic(text,boolean)',
          'queue.get_event(bigint)',
          'queue.list_subscriptions(text)',
          'queue.list_topics()',
          'queue.prune_events(integer)',
          'queue.publish(text,jsonb,text,jsonb)',
          'queue.publish_many(text,jsonb)',
          'queue.relay(integer)',
          'queue.retry_dead_events(text,bigint[])',
          'queue.subscribe(text,text,text)',
          'queue.unsubscribe(text,text,text)',
          'queue.define_saga(text,jsonb,interval)',
          'queue.list_sagas()',
          'queue.start_saga(text,jsonb,text)',
          'queue.cancel_saga(bigint)',
          'queue.retry_saga_compensation(bigint)',
          'queue.expire_saga_deadlines(integer)',
          'queue.saga_timeline(bigint)',
          'queue.stuck_sagas(interval)'],
    'the SECURITY DEFINER functions are exactly these');

-- ----------------------------------------------------------------------
-- Pinned search_path
-- ----------------------------------------------------------------------
SELECT is_empty(
    $$SELECT p.oid::regprocedure, p.proconfig FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace AND p.prosecdef
         AND p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']$$,
    'every SECURITY DEFINER function has exactly SET search_path = pg_catalog, pg_temp');
SELECT is_empty(
    $$SELECT p.oid::regprocedure, p.proconfig FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace AND p.prosecdef
         AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                          WHERE c LIKE 'search_path=%')$$,
    'no SECURITY DEFINER function runs with the caller''s search_path');
SELECT is_empty(
    $$SELECT p.oid::regprocedure, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'queue'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
         AND p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']$$,
    'every SQL and PL/pgSQL function (definer or not) pins search_path too');
SELECT is_empty(
    $$SELECT p.oid::regprocedure, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'queue'::regnamespace
         AND p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']
         AND NOT (l.lanname = 'c' AND p.proname LIKE '\_%' AND NOT p.prosecdef)$$,
    'only internal C helpers (_check_name, _check_retry_policy, _lock_queue_name, _lock_topic_name, _promote_groups, _queue_changed, _wake, _count_outcome, _reset_stats, _throughput, _waiting_claims, _worker_status, _saga_stale_completions: no SQL) may leave search_path alone');

-- complete_and_claim (0.2.0): a C entry point like claim, SECURITY DEFINER
-- with search_path pinned, not strict (it raises on NULLs), one row
-- expected.  _queue_changed: the C trigger function that keeps the
-- backends' queue lookup caches true; an internal helper, not a definer.
SELECT set_eq(
    $$SELECT p.proname::text, l.lanname::text, p.provolatile::text, p.proisstrict, p.proretset,
             p.prosecdef, p.prorows::int, p.proconfig
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'queue'::regnamespace
         AND p.proname IN ('complete_and_claim', '_queue_changed')$$,
    $$VALUES ('complete_and_claim', 'c', 'v', false, true, true, 1,
              ARRAY['search_path=pg_catalog, pg_temp']),
             ('_queue_changed', 'c', 'v', false, false, false, 0, NULL::text[])$$,
    'complete_and_claim: C, volatile, not strict, set-returning, SECURITY DEFINER, ROWS 1, search_path pinned; _queue_changed: C, volatile, no settings');
SELECT trigger_is('queue', 'queue', 'queue_changed', 'queue', '_queue_changed',
                  'trigger queue_changed on queue.queue calls queue._queue_changed()');
SELECT is(string_agg(pg_get_triggerdef(t.oid) || ' [' || t.tgenabled::text || ']', E'\n' ORDER BY t.tgname),
          E'CREATE TRIGGER queue_changed AFTER INSERT OR DELETE OR UPDATE ON queue.queue FOR EACH ROW EXECUTE FUNCTION queue._queue_changed() [A]\n'
          'CREATE TRIGGER queue_truncated AFTER TRUNCATE ON queue.queue FOR EACH STATEMENT EXECUTE FUNCTION queue._queue_changed() [A]',
          'queue_changed (each row) and queue_truncated (TRUNCATE) fire ALWAYS after every change to queue.queue')
  FROM pg_trigger t WHERE t.tgrelid = 'queue.queue'::regclass AND NOT t.tgisinternal;
SELECT throws_ok('SELECT queue._queue_changed()', '39P01', 'queue._queue_changed() must be called as a trigger',
                 'queue._queue_changed() cannot be called except as a trigger');

-- The internal C functions of the monitoring release: language, volatility
-- and strictness (_reset_stats takes NULL: every counter of the database).
SELECT set_eq(
    $$SELECT p.proname::text, l.lanname::text, p.provolatile::text, p.proisstrict, p.proretset
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'queue'::regnamespace
         AND p.proname IN ('_wake', '_count_outcome', '_reset_stats', '_throughput',
                           '_waiting_claims', '_worker_status')$$,
    $$VALUES ('_wake', 'c', 'v', true, false),
             ('_count_outcome', 'c', 'v', true, false),
             ('_reset_stats', 'c', 'v', false, false),
             ('_throughput', 'c', 'v', false, true),
             ('_waiting_claims', 'c', 'v', true, false),
             ('_worker_status', 'c', 'v', false, true)$$,
    'the new internal C functions: language c, volatile, strict except _reset_stats and the set-returning ones');
-- The internal C functions of the outbox release: the topic name lock and
-- group promotion, both strict.
SELECT set_eq(
    $$SELECT p.proname::text, l.lanname::text, p.provolatile::text, p.proisstrict, p.proretset
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'queue'::regnamespace
         AND p.proname IN ('_lock_topic_name', '_promote_groups')$$,
    $$VALUES ('_lock_topic_name', 'c', 'v', true, false),
             ('_promote_groups', 'c', 'v', true, false)$$,
    '_lock_topic_name and _promote_groups: language c, volatile, strict');
-- The C entry points of the outbox: publish, publish_many, relay.
SELECT set_eq(
    $$SELECT p.proname::text, l.lanname::text, p.provolatile::text, p.proisstrict, p.proretset
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'queue'::regnamespace
         AND p.proname IN ('publish', 'publish_many', 'relay')$$,
    $$VALUES ('publish', 'c', 'v', false, false),
             ('publish_many', 'c', 'v', false, true),
             ('relay', 'c', 'v', false, false)$$,
    'publish, publish_many and relay: language c, volatile, not strict (they raise on NULLs)');
-- The sagas: one C function (the stale completions counted in shared
-- memory), the rest PL/pgSQL or SQL; the read-only API functions are stable.
SELECT set_eq(
    $$SELECT p.proname::text, l.lanname::text, p.provolatile::text, p.proisstrict, p.proretset
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'queue'::regnamespace AND p.proname LIKE '%saga%'$$,
    $$VALUES ('_saga_stale_completions', 'c', 'v', true, false),
             ('_check_saga_steps', 'plpgsql', 'v', false, false),
             ('_saga_abort', 'plpgsql', 'v', false, false),
             ('_saga_cancel_job', 'plpgsql', 'v', false, false),
             ('_saga_compensate_from', 'plpgsql', 'v', false, false),
             ('_saga_enqueue', 'plpgsql', 'v', false, false),
             ('_saga_job_gone', 'plpgsql', 'v', false, false),
             ('_saga_job_settled', 'plpgsql', 'v', false, false),
             ('_saga_log', 'sql', 'v', false, false),
             ('_saga_needs_attention', 'plpgsql', 'v', false, false),
             ('_saga_step_retrying', 'plpgsql', 'v', false, false),
             ('define_saga', 'plpgsql', 'v', false, false),
             ('list_sagas', 'sql', 's', false, true),
             ('start_saga', 'plpgsql', 'v', false, false),
             ('cancel_saga', 'plpgsql', 'v', false, false),
             ('retry_saga_compensation', 'plpgsql', 'v', false, false),
             ('expire_saga_deadlines', 'plpgsql', 'v', false, false),
             ('saga_timeline', 'sql', 's', false, true),
             ('stuck_sagas', 'sql', 's', false, true)$$,
    'the saga functions: language, volatility, strictness, set-returning');

-- ----------------------------------------------------------------------
-- Nothing for PUBLIC
-- ----------------------------------------------------------------------
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace AND p.proacl IS NULL$$,
    'no function has the default ACL (which lets PUBLIC execute)');
SELECT is_empty(
    $$SELECT p.oid::regprocedure, a.privilege_type
        FROM pg_proc p, aclexplode(p.proacl) a
       WHERE p.pronamespace = 'queue'::regnamespace AND a.grantee = 0$$,
    'no function is executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public', f, 'EXECUTE'), f || ' is not executable by PUBLIC')
  FROM unnest(ARRAY['queue._wake(integer)', 'queue._count_outcome(integer,bigint,bigint)',
                    'queue._reset_stats(integer)', 'queue._throughput()',
                    'queue._waiting_claims(integer)', 'queue._worker_status()',
                    'queue._lock_topic_name(text)', 'queue._promote_groups(integer,text[])',
                    'queue._topic_id(text)', 'queue._check_target(text,text)',
                    'queue.publish(text,jsonb,text,jsonb)', 'queue.relay(integer)',
                    'queue._saga_stale_completions(integer)',
                    'queue._saga_job_settled(bigint,integer,boolean,bigint,integer,text,jsonb,text)',
                    'queue._saga_step_retrying(bigint)', 'queue.start_saga(text,jsonb,text)',
                    'queue.define_saga(text,jsonb,interval)', 'queue._queue_changed()',
                    'queue.complete_and_claim(bigint[],uuid[],text,text,integer,interval,jsonb[])']) f;
SELECT is_empty(
    $$SELECT p.oid::regprocedure, a.grantee::regrole, a.privilege_type
        FROM pg_proc p, aclexplode(p.proacl) a
       WHERE p.pronamespace = 'queue'::regnamespace AND a.grantee <> p.proowner$$,
    'after install only the owner may execute the functions');
SELECT is_empty(
    $$SELECT n.nspname, a.privilege_type
        FROM pg_namespace n, aclexplode(n.nspacl) a
       WHERE n.nspname = 'queue' AND a.grantee <> n.nspowner$$,
    'nobody but the owner has USAGE or CREATE on schema queue');
SELECT is_empty(
    $$SELECT c.oid::regclass, c.relkind, a.privilege_type
        FROM pg_class c, aclexplode(c.relacl) a
       WHERE c.relnamespace = 'queue'::regnamespace AND a.grantee = 0$$,
    'PUBLIC has no privilege on any table, view or sequence');
SELECT is_empty(
    $$SELECT c.oid::regclass, a.grantee::regrole, a.privilege_type
        FROM pg_class c, aclexplode(c.relacl) a
       WHERE c.relnamespace = 'queue'::regnamespace AND a.grantee <> c.relowner$$,
    'after install only the owner has privileges on the tables, view and sequences');
SELECT is_empty(
    $$SELECT c.oid::regclass, t.attname, a.privilege_type
        FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid, aclexplode(t.attacl) a
       WHERE c.relnamespace = 'queue'::regnamespace$$,
    'no column privileges on any relation of schema queue');

-- The same seen through the privilege functions, for a role that was
-- granted nothing (what it has, it has through PUBLIC).
CREATE ROLE qt_api_nobody;
SELECT ok(NOT has_schema_privilege('qt_api_nobody', 'queue', 'USAGE'),
          'a role granted nothing has no USAGE on schema queue');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_api_nobody', p.oid, 'EXECUTE')$$,
    'a role granted nothing can execute no function of schema queue');
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_class c
       WHERE c.relnamespace = 'queue'::regnamespace
         AND CASE WHEN c.relkind IN ('r', 'v', 'p')
                  THEN has_table_privilege('qt_api_nobody', c.oid,
                          'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
             END$$,
    'a role granted nothing has no privilege on the tables and the view');
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_class c
       WHERE c.relnamespace = 'queue'::regnamespace AND c.relkind = 'S'
         AND CASE WHEN c.relkind = 'S'
                  THEN has_sequence_privilege('qt_api_nobody', c.oid, 'USAGE, SELECT, UPDATE')
             END$$,
    'a role granted nothing has no privilege on the sequences');

SELECT * FROM finish();
ROLLBACK;
