-- pgTAP: the schema of the queue extension (tables, columns, keys,
-- indexes, CHECK constraints, the views, sequences, pg_dump registration).
-- Settings differ from pg_regress's defaults on purpose: IntervalStyle is
-- set so that constraint and default texts read the same everywhere.
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
SELECT plan(459);

-- ----------------------------------------------------------------------
-- Schema and relations
-- ----------------------------------------------------------------------
SELECT has_schema('queue');
SELECT has_extension('queue', 'queue', 'extension queue lives in schema queue');
SELECT tables_are('queue', ARRAY['queue', 'job', 'job_archive', 'access_grant', 'topic',
                                 'subscription', 'event', 'event_archive', 'saga_definition',
                                 'saga', 'saga_event']);
SELECT views_are('queue', ARRAY['jobs', 'queue_stats', 'workers', 'events', 'topic_stats',
                                'blocked_groups', 'sagas', 'saga_stats']);
SELECT sequences_are('queue', ARRAY['queue_id_seq', 'job_id_seq', 'topic_id_seq',
                                    'subscription_id_seq', 'event_id_seq',
                                    'saga_definition_id_seq', 'saga_id_seq', 'saga_event_id_seq']);
SELECT indexes_are('queue', 'queue', ARRAY['queue_pkey', 'queue_name_key']);
SELECT indexes_are('queue', 'job',
                   ARRAY['job_pkey', 'job_claim_idx', 'job_lease_idx', 'job_group_idx',
                         'job_deadline_idx', 'job_dedup_idx']);
SELECT indexes_are('queue', 'job_archive',
                   ARRAY['job_archive_pkey', 'job_archive_queue_state_idx']);
SELECT indexes_are('queue', 'access_grant', ARRAY['access_grant_pkey']);
SELECT indexes_are('queue', 'topic', ARRAY['topic_pkey', 'topic_name_key']);
SELECT indexes_are('queue', 'subscription',
                   ARRAY['subscription_pkey', 'subscription_queue_key', 'subscription_channel_key',
                         'subscription_queue_idx']);
SELECT indexes_are('queue', 'event', ARRAY['event_pkey']);
SELECT indexes_are('queue', 'event_archive', ARRAY['event_archive_pkey', 'event_archive_topic_idx']);
SELECT indexes_are('queue', 'saga_definition',
                   ARRAY['saga_definition_pkey', 'saga_definition_name_version_key']);
SELECT indexes_are('queue', 'saga', ARRAY['saga_pkey', 'saga_idempotency_idx', 'saga_status_idx']);
SELECT indexes_are('queue', 'saga_event', ARRAY['saga_event_pkey', 'saga_event_saga_idx']);

-- ----------------------------------------------------------------------
-- queue.queue
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'queue', ARRAY[
    'id', 'name', 'max_attempts', 'retry_policy', 'lease_timeout', 'retention',
    'dead_retention', 'paused', 'ordered', 'created_at', 'updated_at']);
SELECT col_type_is('queue', 'queue', 'id', 'integer', 'queue.queue.id is integer');
SELECT col_type_is('queue', 'queue', 'name', 'text', 'queue.queue.name is text');
SELECT col_type_is('queue', 'queue', 'max_attempts', 'integer', 'queue.queue.max_attempts is integer');
SELECT col_type_is('queue', 'queue', 'retry_policy', 'jsonb', 'queue.queue.retry_policy is jsonb');
SELECT col_type_is('queue', 'queue', 'lease_timeout', 'interval', 'queue.queue.lease_timeout is interval');
SELECT col_type_is('queue', 'queue', 'retention', 'interval', 'queue.queue.retention is interval');
SELECT col_type_is('queue', 'queue', 'dead_retention', 'interval', 'queue.queue.dead_retention is interval');
SELECT col_type_is('queue', 'queue', 'paused', 'boolean', 'queue.queue.paused is boolean');
SELECT col_type_is('queue', 'queue', 'ordered', 'boolean', 'queue.queue.ordered is boolean');
SELECT col_type_is('queue', 'queue', 'created_at', 'timestamp with time zone', 'queue.queue.created_at is timestamp with time zone');
SELECT col_type_is('queue', 'queue', 'updated_at', 'timestamp with time zone', 'queue.queue.updated_at is timestamp with time zone');
SELECT col_not_null('queue', 'queue', c, 'queue.queue.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'name', 'max_attempts', 'retry_policy', 'lease_timeout',
                    'retention', 'dead_retention', 'paused', 'ordered', 'created_at',
                    'updated_at']::name[]) c;
SELECT has_pk('queue', 'queue', 'queue.queue has a primary key');
SELECT col_is_pk('queue', 'queue', 'id', 'queue.queue.id is the primary key');
SELECT col_is_unique('queue', 'queue', 'name', 'queue names are unique');
SELECT col_default_is('queue', 'queue', 'id', 'nextval(''queue.queue_id_seq''::regclass)',
                      'queue.queue.id defaults to nextval(queue.queue_id_seq)');
SELECT col_default_is('queue', 'queue', 'paused', 'false', 'queues start unpaused');
SELECT col_default_is('queue', 'queue', 'ordered', 'false', 'queues are not ordered by default');

-- ----------------------------------------------------------------------
-- queue.job
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'job', ARRAY[
    'id', 'queue_id', 'state', 'priority', 'run_at', 'attempts', 'max_attempts',
    'retry_policy', 'last_delay', 'payload', 'headers', 'dedup_key', 'group_key',
    'lease_timeout', 'deadline_at', 'saga_id', 'saga_step', 'saga_compensation',
    'lease_token', 'worker', 'claimed_at', 'errors', 'created_at']);
SELECT col_type_is('queue', 'job', 'id', 'bigint', 'queue.job.id is bigint');
SELECT col_type_is('queue', 'job', 'queue_id', 'integer', 'queue.job.queue_id is integer');
SELECT col_type_is('queue', 'job', 'state', 'text', 'queue.job.state is text');
SELECT col_type_is('queue', 'job', 'priority', 'integer', 'queue.job.priority is integer');
SELECT col_type_is('queue', 'job', 'run_at', 'timestamp with time zone', 'queue.job.run_at is timestamp with time zone');
SELECT col_type_is('queue', 'job', 'attempts', 'integer', 'queue.job.attempts is integer');
SELECT col_type_is('queue', 'job', 'max_attempts', 'integer', 'queue.job.max_attempts is integer');
SELECT col_type_is('queue', 'job', 'retry_policy', 'jsonb', 'queue.job.retry_policy is jsonb');
SELECT col_type_is('queue', 'job', 'last_delay', 'double precision', 'queue.job.last_delay is double precision');
SELECT col_type_is('queue', 'job', 'payload', 'jsonb', 'queue.job.payload is jsonb');
SELECT col_type_is('queue', 'job', 'headers', 'jsonb', 'queue.job.headers is jsonb');
SELECT col_type_is('queue', 'job', 'dedup_key', 'text', 'queue.job.dedup_key is text');
SELECT col_type_is('queue', 'job', 'group_key', 'text', 'queue.job.group_key is text');
SELECT col_type_is('queue', 'job', 'lease_token', 'uuid', 'queue.job.lease_token is uuid');
SELECT col_type_is('queue', 'job', 'worker', 'text', 'queue.job.worker is text');
SELECT col_type_is('queue', 'job', 'claimed_at', 'timestamp with time zone', 'queue.job.claimed_at is timestamp with time zone');
SELECT col_type_is('queue', 'job', 'errors', 'jsonb', 'queue.job.errors is jsonb');
SELECT col_type_is('queue', 'job', 'created_at', 'timestamp with time zone', 'queue.job.created_at is timestamp with time zone');
SELECT col_type_is('queue', 'job', c, t, format('queue.job.%s is %s', c, t))
  FROM (VALUES ('lease_timeout', 'interval'), ('deadline_at', 'timestamp with time zone'),
               ('saga_id', 'bigint'), ('saga_step', 'integer'),
               ('saga_compensation', 'boolean')) v(c, t);
SELECT col_not_null('queue', 'job', c, 'queue.job.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'queue_id', 'state', 'priority', 'run_at', 'attempts',
                    'max_attempts', 'payload', 'errors', 'created_at']::name[]) c;
SELECT col_is_null('queue', 'job', c, 'queue.job.' || c || ' is nullable')
  FROM unnest(ARRAY['retry_policy', 'last_delay', 'headers', 'dedup_key', 'group_key',
                    'lease_token', 'worker', 'claimed_at', 'lease_timeout', 'deadline_at',
                    'saga_id', 'saga_step', 'saga_compensation']::name[]) c;
SELECT has_pk('queue', 'job', 'queue.job has a primary key');
SELECT col_is_pk('queue', 'job', 'id', 'queue.job.id is the primary key');
SELECT col_default_is('queue', 'job', 'id', 'nextval(''queue.job_id_seq''::regclass)',
                      'queue.job.id defaults to nextval(queue.job_id_seq)');
SELECT col_default_is('queue', 'job', 'errors', '[]', 'queue.job.errors defaults to []');

-- the claim index: (queue_id, priority DESC, run_at, id), blocked jobs left out
SELECT has_index('queue', 'job', 'job_claim_idx',
                 ARRAY['queue_id', 'priority', 'run_at', 'id']);
SELECT is(pg_get_indexdef('queue.job_claim_idx'::regclass),
          'CREATE INDEX job_claim_idx ON queue.job USING btree (queue_id, priority DESC, run_at, id) WHERE (state <> ''blocked''::text)',
          'job_claim_idx orders priority descending');
SELECT is(pg_get_expr(indpred, indrelid), '(state <> ''blocked''::text)',
          'job_claim_idx is partial: WHERE state <> ''blocked'' (blocked jobs cannot be claimed)')
  FROM pg_index WHERE indexrelid = 'queue.job_claim_idx'::regclass;
SELECT isnt((SELECT indisunique FROM pg_index WHERE indexrelid = 'queue.job_claim_idx'::regclass),
            true, 'job_claim_idx is not unique');
-- the lease index: running jobs by run_at (the lease expiry)
SELECT has_index('queue', 'job', 'job_lease_idx', ARRAY['run_at']);
SELECT is(pg_get_expr(indpred, indrelid), '(state = ''running''::text)',
          'job_lease_idx is partial: WHERE state = ''running''')
  FROM pg_index WHERE indexrelid = 'queue.job_lease_idx'::regclass;
-- the group index: the jobs of a group in order (ordered queues)
SELECT has_index('queue', 'job', 'job_group_idx', ARRAY['queue_id', 'group_key', 'id']);
SELECT isnt((SELECT indisunique FROM pg_index WHERE indexrelid = 'queue.job_group_idx'::regclass),
            true, 'job_group_idx is not unique');
SELECT is(pg_get_indexdef('queue.job_group_idx'::regclass),
          'CREATE INDEX job_group_idx ON queue.job USING btree (queue_id, group_key, id) WHERE (group_key IS NOT NULL)',
          'job_group_idx definition: partial, WHERE group_key IS NOT NULL');
-- the deduplication index: unique per queue among live jobs with a key
SELECT has_index('queue', 'job', 'job_dedup_idx', ARRAY['queue_id', 'dedup_key']);
SELECT index_is_unique('queue', 'job', 'job_dedup_idx');
SELECT is(pg_get_expr(indpred, indrelid), '(dedup_key IS NOT NULL)',
          'job_dedup_idx is partial: WHERE dedup_key IS NOT NULL')
  FROM pg_index WHERE indexrelid = 'queue.job_dedup_idx'::regclass;
SELECT is(pg_get_indexdef('queue.job_dedup_idx'::regclass),
          'CREATE UNIQUE INDEX job_dedup_idx ON queue.job USING btree (queue_id, dedup_key) WHERE (dedup_key IS NOT NULL)',
          'job_dedup_idx definition');
-- the deadline index: jobs with a deadline (saga steps), for expire_leases
SELECT has_index('queue', 'job', 'job_deadline_idx', ARRAY['deadline_at']);
SELECT is(pg_get_indexdef('queue.job_deadline_idx'::regclass),
          'CREATE INDEX job_deadline_idx ON queue.job USING btree (deadline_at) WHERE (deadline_at IS NOT NULL)',
          'job_deadline_idx definition: partial, WHERE deadline_at IS NOT NULL');

-- ----------------------------------------------------------------------
-- queue.job_archive
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'job_archive', ARRAY[
    'id', 'queue_id', 'state', 'priority', 'attempts', 'max_attempts', 'retry_policy',
    'payload', 'headers', 'dedup_key', 'group_key', 'saga_id', 'saga_step', 'saga_compensation',
    'worker', 'result', 'errors', 'created_at', 'finished_at']);
SELECT col_type_is('queue', 'job_archive', 'id', 'bigint', 'queue.job_archive.id is bigint');
SELECT col_type_is('queue', 'job_archive', 'queue_id', 'integer', 'queue.job_archive.queue_id is integer');
SELECT col_type_is('queue', 'job_archive', 'state', 'text', 'queue.job_archive.state is text');
SELECT col_type_is('queue', 'job_archive', 'priority', 'integer', 'queue.job_archive.priority is integer');
SELECT col_type_is('queue', 'job_archive', 'attempts', 'integer', 'queue.job_archive.attempts is integer');
SELECT col_type_is('queue', 'job_archive', 'max_attempts', 'integer', 'queue.job_archive.max_attempts is integer');
SELECT col_type_is('queue', 'job_archive', 'retry_policy', 'jsonb', 'queue.job_archive.retry_policy is jsonb');
SELECT col_type_is('queue', 'job_archive', 'payload', 'jsonb', 'queue.job_archive.payload is jsonb');
SELECT col_type_is('queue', 'job_archive', 'headers', 'jsonb', 'queue.job_archive.headers is jsonb');
SELECT col_type_is('queue', 'job_archive', 'dedup_key', 'text', 'queue.job_archive.dedup_key is text');
SELECT col_type_is('queue', 'job_archive', 'group_key', 'text', 'queue.job_archive.group_key is text');
SELECT col_is_null('queue', 'job_archive', 'group_key', 'queue.job_archive.group_key is nullable');
SELECT col_type_is('queue', 'job_archive', c, t, format('queue.job_archive.%s is %s', c, t))
  FROM (VALUES ('saga_id', 'bigint'), ('saga_step', 'integer'),
               ('saga_compensation', 'boolean')) v(c, t);
SELECT col_is_null('queue', 'job_archive', c, 'queue.job_archive.' || c || ' is nullable')
  FROM unnest(ARRAY['saga_id', 'saga_step', 'saga_compensation']::name[]) c;
SELECT col_type_is('queue', 'job_archive', 'worker', 'text', 'queue.job_archive.worker is text');
SELECT col_type_is('queue', 'job_archive', 'result', 'jsonb', 'queue.job_archive.result is jsonb');
SELECT col_type_is('queue', 'job_archive', 'errors', 'jsonb', 'queue.job_archive.errors is jsonb');
SELECT col_type_is('queue', 'job_archive', 'created_at', 'timestamp with time zone', 'queue.job_archive.created_at is timestamp with time zone');
SELECT col_type_is('queue', 'job_archive', 'finished_at', 'timestamp with time zone', 'queue.job_archive.finished_at is timestamp with time zone');
SELECT col_not_null('queue', 'job_archive', c, 'queue.job_archive.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'queue_id', 'state', 'priority', 'attempts', 'max_attempts',
                    'payload', 'errors', 'created_at', 'finished_at']::name[]) c;
SELECT has_pk('queue', 'job_archive', 'queue.job_archive has a primary key');
SELECT col_is_pk('queue', 'job_archive', 'id', 'queue.job_archive.id is the primary key');
SELECT col_hasnt_default('queue', 'job_archive', 'id',
                         'queue.job_archive.id has no default (ids come from queue.job)');
SELECT has_index('queue', 'job_archive', 'job_archive_queue_state_idx',
                 ARRAY['queue_id', 'state', 'id']);
SELECT isnt((SELECT indisunique FROM pg_index
              WHERE indexrelid = 'queue.job_archive_queue_state_idx'::regclass),
            true, 'job_archive_queue_state_idx is not unique');
SELECT is((SELECT indpred FROM pg_index
            WHERE indexrelid = 'queue.job_archive_queue_state_idx'::regclass)::text,
          NULL, 'job_archive_queue_state_idx is not partial');

-- ----------------------------------------------------------------------
-- queue.access_grant (which levels grant_access gave to which roles, by OID)
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'access_grant', ARRAY['role_oid', 'access']);
SELECT col_type_is('queue', 'access_grant', 'role_oid', 'oid', 'queue.access_grant.role_oid is oid');
SELECT col_type_is('queue', 'access_grant', 'access', 'text', 'queue.access_grant.access is text');
SELECT col_not_null('queue', 'access_grant', c, 'queue.access_grant.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['role_oid', 'access']::name[]) c;
SELECT has_pk('queue', 'access_grant', 'queue.access_grant has a primary key');
SELECT col_is_pk('queue', 'access_grant', ARRAY['role_oid', 'access'],
                 'queue.access_grant''s primary key is (role_oid, access)');

-- ----------------------------------------------------------------------
-- queue.topic
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'topic', ARRAY['id', 'name', 'retention', 'created_at']);
SELECT col_type_is('queue', 'topic', c, t, format('queue.topic.%s is %s', c, t))
  FROM (VALUES ('id', 'integer'), ('name', 'text'), ('retention', 'interval'),
               ('created_at', 'timestamp with time zone')) v(c, t);
SELECT col_not_null('queue', 'topic', c, 'queue.topic.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'name', 'retention', 'created_at']::name[]) c;
SELECT col_is_pk('queue', 'topic', 'id', 'queue.topic.id is the primary key');
SELECT col_is_unique('queue', 'topic', 'name', 'topic names are unique');
SELECT col_default_is('queue', 'topic', 'id', 'nextval(''queue.topic_id_seq''::regclass)',
                      'queue.topic.id defaults to nextval(queue.topic_id_seq)');
SELECT col_hasnt_default('queue', 'topic', 'retention',
                         'queue.topic.retention has no column default (create_topic gives it)');

-- ----------------------------------------------------------------------
-- queue.subscription (a queue or a NOTIFY channel)
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'subscription', ARRAY['id', 'topic_id', 'queue_id', 'channel', 'created_at']);
SELECT col_type_is('queue', 'subscription', c, t, format('queue.subscription.%s is %s', c, t))
  FROM (VALUES ('id', 'integer'), ('topic_id', 'integer'), ('queue_id', 'integer'),
               ('channel', 'text'), ('created_at', 'timestamp with time zone')) v(c, t);
SELECT col_not_null('queue', 'subscription', c, 'queue.subscription.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'topic_id', 'created_at']::name[]) c;
SELECT col_is_null('queue', 'subscription', c, 'queue.subscription.' || c || ' is nullable')
  FROM unnest(ARRAY['queue_id', 'channel']::name[]) c;
SELECT col_is_pk('queue', 'subscription', 'id', 'queue.subscription.id is the primary key');
SELECT col_is_unique('queue', 'subscription', ARRAY['topic_id', 'queue_id'],
                     'a topic delivers to a queue once');
SELECT col_is_unique('queue', 'subscription', ARRAY['topic_id', 'channel'],
                     'a topic delivers to a channel once');
SELECT col_default_is('queue', 'subscription', 'id', 'nextval(''queue.subscription_id_seq''::regclass)',
                      'queue.subscription.id defaults to nextval(queue.subscription_id_seq)');
SELECT is(pg_get_indexdef('queue.subscription_queue_idx'::regclass),
          'CREATE INDEX subscription_queue_idx ON queue.subscription USING btree (queue_id) WHERE (queue_id IS NOT NULL)',
          'subscription_queue_idx: the subscriptions of a queue (drop_queue)');

-- ----------------------------------------------------------------------
-- queue.event (the outbox) and queue.event_archive
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'event', ARRAY[
    'id', 'topic_id', 'key', 'payload', 'headers', 'subscriptions', 'published_at']);
SELECT col_type_is('queue', 'event', c, t, format('queue.event.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('topic_id', 'integer'), ('key', 'text'), ('payload', 'jsonb'),
               ('headers', 'jsonb'), ('subscriptions', 'integer[]'),
               ('published_at', 'timestamp with time zone')) v(c, t);
SELECT col_not_null('queue', 'event', c, 'queue.event.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'topic_id', 'payload', 'subscriptions', 'published_at']::name[]) c;
SELECT col_is_null('queue', 'event', c, 'queue.event.' || c || ' is nullable')
  FROM unnest(ARRAY['key', 'headers']::name[]) c;
SELECT col_is_pk('queue', 'event', 'id', 'queue.event.id is the primary key');
SELECT col_hasnt_default('queue', 'event', 'id',
                         'queue.event.id has no default (publish draws it after the key lock)');

SELECT columns_are('queue', 'event_archive', ARRAY[
    'id', 'topic_id', 'key', 'payload', 'headers', 'subscriptions', 'published_at', 'state',
    'error', 'finished_at']);
SELECT col_type_is('queue', 'event_archive', c, t, format('queue.event_archive.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('topic_id', 'integer'), ('key', 'text'), ('payload', 'jsonb'),
               ('headers', 'jsonb'), ('subscriptions', 'integer[]'),
               ('published_at', 'timestamp with time zone'), ('state', 'text'),
               ('error', 'text'), ('finished_at', 'timestamp with time zone')) v(c, t);
SELECT col_not_null('queue', 'event_archive', c, 'queue.event_archive.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'topic_id', 'payload', 'subscriptions', 'published_at', 'state',
                    'finished_at']::name[]) c;
SELECT col_is_null('queue', 'event_archive', c, 'queue.event_archive.' || c || ' is nullable')
  FROM unnest(ARRAY['key', 'headers', 'error']::name[]) c;
SELECT col_is_pk('queue', 'event_archive', 'id', 'queue.event_archive.id is the primary key');
SELECT col_hasnt_default('queue', 'event_archive', 'id',
                         'queue.event_archive.id has no default (ids come from queue.event)');
SELECT has_index('queue', 'event_archive', 'event_archive_topic_idx',
                 ARRAY['topic_id', 'state', 'finished_at']);

-- ----------------------------------------------------------------------
-- Sagas: queue.saga_definition (versions), queue.saga (instances) and
-- queue.saga_event (the timeline)
-- ----------------------------------------------------------------------
SELECT columns_are('queue', 'saga_definition', ARRAY[
    'id', 'name', 'version', 'steps', 'deadline', 'created_at']);
SELECT col_type_is('queue', 'saga_definition', c, t, format('queue.saga_definition.%s is %s', c, t))
  FROM (VALUES ('id', 'integer'), ('name', 'text'), ('version', 'integer'), ('steps', 'jsonb'),
               ('deadline', 'interval'), ('created_at', 'timestamp with time zone')) v(c, t);
SELECT col_not_null('queue', 'saga_definition', c, 'queue.saga_definition.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'name', 'version', 'steps', 'created_at']::name[]) c;
SELECT col_is_null('queue', 'saga_definition', 'deadline', 'queue.saga_definition.deadline is nullable');
SELECT col_is_pk('queue', 'saga_definition', 'id', 'queue.saga_definition.id is the primary key');
SELECT col_is_unique('queue', 'saga_definition', ARRAY['name', 'version'],
                     'a saga type has each version once');
SELECT col_default_is('queue', 'saga_definition', 'id',
                      'nextval(''queue.saga_definition_id_seq''::regclass)',
                      'queue.saga_definition.id defaults to nextval(queue.saga_definition_id_seq)');

SELECT columns_are('queue', 'saga', ARRAY[
    'id', 'definition_id', 'saga_type', 'status', 'input', 'context', 'idempotency_key', 'step',
    'compensating_step', 'job_id', 'failure', 'cancel_requested', 'deadline_at', 'created_at',
    'updated_at', 'finished_at']);
SELECT col_type_is('queue', 'saga', c, t, format('queue.saga.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('definition_id', 'integer'), ('saga_type', 'text'),
               ('status', 'text'), ('input', 'jsonb'), ('context', 'jsonb'),
               ('idempotency_key', 'text'), ('step', 'integer'), ('compensating_step', 'integer'),
               ('job_id', 'bigint'), ('failure', 'jsonb'), ('cancel_requested', 'boolean'),
               ('deadline_at', 'timestamp with time zone'),
               ('created_at', 'timestamp with time zone'),
               ('updated_at', 'timestamp with time zone'),
               ('finished_at', 'timestamp with time zone')) v(c, t);
SELECT col_not_null('queue', 'saga', c, 'queue.saga.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'definition_id', 'saga_type', 'status', 'input', 'context', 'step',
                    'cancel_requested', 'created_at', 'updated_at']::name[]) c;
SELECT col_is_null('queue', 'saga', c, 'queue.saga.' || c || ' is nullable')
  FROM unnest(ARRAY['idempotency_key', 'compensating_step', 'job_id', 'failure', 'deadline_at',
                    'finished_at']::name[]) c;
SELECT col_is_pk('queue', 'saga', 'id', 'queue.saga.id is the primary key');
SELECT col_default_is('queue', 'saga', 'id', 'nextval(''queue.saga_id_seq''::regclass)',
                      'queue.saga.id defaults to nextval(queue.saga_id_seq)');
SELECT col_default_is('queue', 'saga', 'context', '{}', 'queue.saga.context defaults to {}');
SELECT col_default_is('queue', 'saga', 'step', '0', 'a saga starts at step 0');
SELECT col_default_is('queue', 'saga', 'cancel_requested', 'false',
                      'queue.saga.cancel_requested defaults to false');
SELECT is(pg_get_indexdef('queue.saga_idempotency_idx'::regclass),
          'CREATE UNIQUE INDEX saga_idempotency_idx ON queue.saga USING btree (saga_type, idempotency_key) WHERE (idempotency_key IS NOT NULL)',
          'saga_idempotency_idx: an idempotency key is unique per saga type');
SELECT is(pg_get_indexdef('queue.saga_status_idx'::regclass),
          'CREATE INDEX saga_status_idx ON queue.saga USING btree (status, updated_at) WHERE (status = ANY (ARRAY[''running''::text, ''compensating''::text, ''needs_attention''::text]))',
          'saga_status_idx: the unfinished sagas by status and last change (stuck_sagas)');

SELECT columns_are('queue', 'saga_event', ARRAY[
    'id', 'saga_id', 'step', 'step_name', 'kind', 'event', 'job_id', 'attempts', 'detail', 'at']);
SELECT col_type_is('queue', 'saga_event', c, t, format('queue.saga_event.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('saga_id', 'bigint'), ('step', 'integer'),
               ('step_name', 'text'), ('kind', 'text'), ('event', 'text'), ('job_id', 'bigint'),
               ('attempts', 'integer'), ('detail', 'jsonb'),
               ('at', 'timestamp with time zone')) v(c, t);
SELECT col_not_null('queue', 'saga_event', c, 'queue.saga_event.' || c || ' is NOT NULL')
  FROM unnest(ARRAY['id', 'saga_id', 'kind', 'event', 'at']::name[]) c;
SELECT col_is_null('queue', 'saga_event', c, 'queue.saga_event.' || c || ' is nullable')
  FROM unnest(ARRAY['step', 'step_name', 'job_id', 'attempts', 'detail']::name[]) c;
SELECT col_is_pk('queue', 'saga_event', 'id', 'queue.saga_event.id is the primary key');
SELECT col_default_is('queue', 'saga_event', 'at', 'clock_timestamp()',
                      'queue.saga_event.at defaults to clock_timestamp()');
SELECT is(pg_get_indexdef('queue.saga_event_saga_idx'::regclass),
          'CREATE INDEX saga_event_saga_idx ON queue.saga_event USING btree (saga_id, id)',
          'saga_event_saga_idx: a saga''s timeline in order');

-- ----------------------------------------------------------------------
-- CHECK constraints, by name and definition
-- ----------------------------------------------------------------------
SELECT has_check('queue', 'queue', 'queue.queue has CHECK constraints');
SELECT has_check('queue', 'job', 'queue.job has CHECK constraints');
SELECT has_check('queue', 'job_archive', 'queue.job_archive has CHECK constraints');
SELECT has_check('queue', 'access_grant', 'queue.access_grant has CHECK constraints');
SELECT has_check('queue', 'topic', 'queue.topic has CHECK constraints');
SELECT has_check('queue', 'subscription', 'queue.subscription has CHECK constraints');
SELECT has_check('queue', 'event_archive', 'queue.event_archive has CHECK constraints');
SELECT has_check('queue', 'saga', 'queue.saga has CHECK constraints');
SELECT set_eq(
    $$SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid)
        FROM pg_constraint
       WHERE connamespace = 'queue'::regnamespace AND contype = 'c'$$,
    $$VALUES
        ('queue.queue', 'queue_max_attempts_check', 'CHECK ((max_attempts >= 1))'),
        ('queue.queue', 'queue_lease_timeout_check', 'CHECK ((lease_timeout > ''00:00:00''::interval))'),
        ('queue.queue', 'queue_retention_check', 'CHECK ((retention >= ''00:00:00''::interval))'),
        ('queue.queue', 'queue_dead_retention_check', 'CHECK ((dead_retention >= ''00:00:00''::interval))'),
        ('queue.job', 'job_state_check', 'CHECK ((state = ANY (ARRAY[''pending''::text, ''running''::text, ''blocked''::text])))'),
        ('queue.job', 'job_lease_check', 'CHECK (((state = ''running''::text) = (lease_token IS NOT NULL)))'),
        ('queue.job', 'job_saga_check', 'CHECK (((saga_id IS NULL) = (saga_step IS NULL)))'),
        ('queue.saga', 'saga_status_check', 'CHECK ((status = ANY (ARRAY[''running''::text, ''compensating''::text, ''completed''::text, ''compensated''::text, ''needs_attention''::text])))'),
        ('queue.job_archive', 'job_archive_state_check', 'CHECK ((state = ANY (ARRAY[''completed''::text, ''dead''::text, ''cancelled''::text])))'),
        ('queue.access_grant', 'access_grant_access_check', 'CHECK ((access = ANY (ARRAY[''producer''::text, ''consumer''::text, ''monitor''::text, ''admin''::text])))'),
        ('queue.topic', 'topic_retention_check', 'CHECK ((retention >= ''00:00:00''::interval))'),
        ('queue.subscription', 'subscription_target_check', 'CHECK (((queue_id IS NULL) <> (channel IS NULL)))'),
        ('queue.event_archive', 'event_archive_state_check', 'CHECK ((state = ANY (ARRAY[''relayed''::text, ''dead''::text])))')$$,
    'the CHECK constraints are exactly these');
SELECT set_eq(
    $$SELECT conrelid::regclass::text, conname::text, contype::text
        FROM pg_constraint
       WHERE connamespace = 'queue'::regnamespace AND contype <> 'c'$$,
    $$VALUES ('queue.queue', 'queue_pkey', 'p'), ('queue.queue', 'queue_name_key', 'u'),
             ('queue.job', 'job_pkey', 'p'), ('queue.job_archive', 'job_archive_pkey', 'p'),
             ('queue.access_grant', 'access_grant_pkey', 'p'),
             ('queue.topic', 'topic_pkey', 'p'), ('queue.topic', 'topic_name_key', 'u'),
             ('queue.subscription', 'subscription_pkey', 'p'),
             ('queue.subscription', 'subscription_queue_key', 'u'),
             ('queue.subscription', 'subscription_channel_key', 'u'),
             ('queue.event', 'event_pkey', 'p'), ('queue.event_archive', 'event_archive_pkey', 'p'),
             ('queue.saga_definition', 'saga_definition_pkey', 'p'),
             ('queue.saga_definition', 'saga_definition_name_version_key', 'u'),
             ('queue.saga', 'saga_pkey', 'p'), ('queue.saga_event', 'saga_event_pkey', 'p')$$,
    'the other constraints are the primary keys and the unique names (queue, topic, subscription targets, saga versions)');

-- The CHECKs hold (each violation is 23514).
SELECT throws_ok($$INSERT INTO queue.queue (name, max_attempts, retry_policy, lease_timeout,
                                            retention, dead_retention)
                   VALUES ('chk', 0, '{}', '1s', '1s', '1s')$$,
                 '23514', NULL, 'queue_max_attempts_check rejects max_attempts 0');
SELECT throws_ok($$INSERT INTO queue.queue (name, max_attempts, retry_policy, lease_timeout,
                                            retention, dead_retention)
                   VALUES ('chk', 1, '{}', '0s', '1s', '1s')$$,
                 '23514', NULL, 'queue_lease_timeout_check rejects a zero lease_timeout');
SELECT throws_ok($$INSERT INTO queue.job (queue_id, state, run_at, max_attempts, payload)
                   VALUES (1, 'done', now(), 1, '{}')$$,
                 '23514', NULL, 'job_state_check rejects an unknown state');
SELECT throws_ok($$INSERT INTO queue.job (queue_id, state, run_at, max_attempts, payload)
                   VALUES (1, 'running', now(), 1, '{}')$$,
                 '23514', NULL, 'job_lease_check rejects a running job without a lease token');
SELECT throws_ok($$INSERT INTO queue.job_archive (id, queue_id, state, priority, attempts,
                                                  max_attempts, payload, errors, created_at,
                                                  finished_at)
                   VALUES (1, 1, 'running', 0, 0, 1, '{}', '[]', now(), now())$$,
                 '23514', NULL, 'job_archive_state_check rejects a live state');
SELECT throws_ok($$INSERT INTO queue.access_grant VALUES (10, 'root')$$,
                 '23514', NULL, 'access_grant_access_check rejects an unknown level');
SELECT lives_ok($$INSERT INTO queue.job (id, queue_id, state, run_at, max_attempts, payload, group_key)
                  VALUES (-1, 1, 'blocked', now(), 1, '{}', 'g')$$,
                'job_state_check accepts a blocked job');
SELECT throws_ok($$INSERT INTO queue.topic (name, retention) VALUES ('chk', '-1 second')$$,
                 '23514', NULL, 'topic_retention_check rejects a negative retention');
SELECT throws_ok($$INSERT INTO queue.subscription (topic_id) VALUES (1)$$,
                 '23514', NULL, 'subscription_target_check rejects a subscription without a target');
SELECT throws_ok($$INSERT INTO queue.subscription (topic_id, queue_id, channel) VALUES (1, 1, 'c')$$,
                 '23514', NULL, 'subscription_target_check rejects a subscription with two targets');
SELECT throws_ok($$INSERT INTO queue.event_archive (id, topic_id, payload, subscriptions,
                                                    published_at, state, finished_at)
                   VALUES (1, 1, '{}', '{}', now(), 'pending', now())$$,
                 '23514', NULL, 'event_archive_state_check rejects a pending event');
SELECT throws_ok($$INSERT INTO queue.job (queue_id, state, run_at, max_attempts, payload, saga_id)
                   VALUES (1, 'pending', now(), 1, '{}', 1)$$,
                 '23514', NULL, 'job_saga_check rejects a saga job without a step');
SELECT throws_ok($$INSERT INTO queue.job (queue_id, state, run_at, max_attempts, payload, saga_step)
                   VALUES (1, 'pending', now(), 1, '{}', 0)$$,
                 '23514', NULL, 'job_saga_check rejects a step without a saga');
SELECT throws_ok($$INSERT INTO queue.saga (definition_id, saga_type, status, input)
                   VALUES (1, 't', 'done', '{}')$$,
                 '23514', NULL, 'saga_status_check rejects an unknown status');
SELECT throws_ok($$INSERT INTO queue.saga_definition (name, version, steps) VALUES ('d', 1, '[]'),
                                                                           ('d', 1, '[]')$$,
                 '23505', NULL, 'a saga type cannot have a version twice');

-- ----------------------------------------------------------------------
-- The view queue.jobs
-- ----------------------------------------------------------------------
SELECT has_view('queue', 'jobs', 'view queue.jobs exists');
SELECT columns_are('queue', 'jobs', ARRAY[
    'id', 'queue', 'state', 'priority', 'attempts', 'max_attempts', 'run_at',
    'lease_expires_at', 'worker', 'payload', 'headers', 'dedup_key', 'group_key', 'retry_policy',
    'result', 'errors', 'last_error', 'created_at', 'claimed_at', 'finished_at']);
SELECT col_type_is('queue', 'jobs', 'id', 'bigint', 'queue.jobs.id is bigint');
SELECT col_type_is('queue', 'jobs', 'queue', 'text', 'queue.jobs.queue is text');
SELECT col_type_is('queue', 'jobs', 'state', 'text', 'queue.jobs.state is text');
SELECT col_type_is('queue', 'jobs', 'run_at', 'timestamp with time zone', 'queue.jobs.run_at is timestamp with time zone');
SELECT col_type_is('queue', 'jobs', 'lease_expires_at', 'timestamp with time zone', 'queue.jobs.lease_expires_at is timestamp with time zone');
SELECT col_type_is('queue', 'jobs', 'payload', 'jsonb', 'queue.jobs.payload is jsonb');
SELECT col_type_is('queue', 'jobs', 'result', 'jsonb', 'queue.jobs.result is jsonb');
SELECT col_type_is('queue', 'jobs', 'last_error', 'text', 'queue.jobs.last_error is text');
SELECT col_type_is('queue', 'jobs', 'group_key', 'text', 'queue.jobs.group_key is text');
SELECT col_type_is('queue', 'jobs', 'finished_at', 'timestamp with time zone', 'queue.jobs.finished_at is timestamp with time zone');

-- ----------------------------------------------------------------------
-- The monitoring views queue.queue_stats and queue.workers (no payloads)
-- ----------------------------------------------------------------------
SELECT has_view('queue', 'queue_stats', 'view queue.queue_stats exists');
SELECT columns_are('queue', 'queue_stats', ARRAY[
    'queue', 'paused', 'ready', 'scheduled', 'retrying', 'running', 'blocked', 'completed', 'dead',
    'cancelled', 'oldest_ready_age', 'expired_leases', 'completed_last_minute',
    'failed_last_minute', 'waiting_claims']);
SELECT col_type_is('queue', 'queue_stats', c, t, format('queue.queue_stats.%s is %s', c, t))
  FROM (VALUES ('queue', 'text'), ('paused', 'boolean'), ('ready', 'bigint'),
               ('scheduled', 'bigint'), ('retrying', 'bigint'), ('running', 'bigint'),
               ('blocked', 'bigint'), ('completed', 'bigint'), ('dead', 'bigint'), ('cancelled', 'bigint'),
               ('oldest_ready_age', 'interval'), ('expired_leases', 'bigint'),
               ('completed_last_minute', 'bigint'), ('failed_last_minute', 'bigint'),
               ('waiting_claims', 'integer')) v(c, t);
SELECT has_view('queue', 'workers', 'view queue.workers exists');
SELECT columns_are('queue', 'workers', ARRAY[
    'database', 'pid', 'state', 'started_at', 'last_activity', 'events_relayed',
    'leases_expired', 'jobs_pruned', 'events_pruned', 'errors']);
SELECT col_type_is('queue', 'workers', c, t, format('queue.workers.%s is %s', c, t))
  FROM (VALUES ('database', 'name'), ('pid', 'integer'), ('state', 'text'),
               ('started_at', 'timestamp with time zone'),
               ('last_activity', 'timestamp with time zone'), ('events_relayed', 'bigint'),
               ('leases_expired', 'bigint'),
               ('jobs_pruned', 'bigint'), ('errors', 'bigint')) v(c, t);

-- ----------------------------------------------------------------------
-- The outbox views: queue.events, queue.topic_stats, queue.blocked_groups
-- ----------------------------------------------------------------------
SELECT has_view('queue', 'events', 'view queue.events exists');
SELECT columns_are('queue', 'events', ARRAY[
    'id', 'topic', 'key', 'state', 'payload', 'headers', 'subscriptions', 'published_at',
    'finished_at', 'error']);
SELECT col_type_is('queue', 'events', c, t, format('queue.events.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('topic', 'text'), ('key', 'text'), ('state', 'text'),
               ('payload', 'jsonb'), ('headers', 'jsonb'), ('subscriptions', 'integer[]'),
               ('published_at', 'timestamp with time zone'),
               ('finished_at', 'timestamp with time zone'), ('error', 'text')) v(c, t);
SELECT has_view('queue', 'topic_stats', 'view queue.topic_stats exists');
SELECT columns_are('queue', 'topic_stats', ARRAY[
    'topic', 'subscription', 'pending', 'oldest_pending_age', 'relayed_last_minute', 'dead']);
SELECT col_type_is('queue', 'topic_stats', c, t, format('queue.topic_stats.%s is %s', c, t))
  FROM (VALUES ('topic', 'text'), ('subscription', 'text'), ('pending', 'bigint'),
               ('oldest_pending_age', 'interval'), ('relayed_last_minute', 'bigint'),
               ('dead', 'bigint')) v(c, t);
SELECT has_view('queue', 'blocked_groups', 'view queue.blocked_groups exists');
SELECT columns_are('queue', 'blocked_groups', ARRAY[
    'queue', 'group_key', 'head_job_id', 'head_state', 'reason', 'blocked_jobs',
    'oldest_blocked_at']);
SELECT col_type_is('queue', 'blocked_groups', c, t, format('queue.blocked_groups.%s is %s', c, t))
  FROM (VALUES ('queue', 'text'), ('group_key', 'text'), ('head_job_id', 'bigint'),
               ('head_state', 'text'), ('reason', 'text'), ('blocked_jobs', 'bigint'),
               ('oldest_blocked_at', 'timestamp with time zone')) v(c, t);

-- ----------------------------------------------------------------------
-- The saga views: queue.sagas and queue.saga_stats
-- ----------------------------------------------------------------------
SELECT has_view('queue', 'sagas', 'view queue.sagas exists');
SELECT columns_are('queue', 'sagas', ARRAY[
    'id', 'saga_type', 'version', 'status', 'input', 'context', 'idempotency_key', 'current_step',
    'compensating_step', 'job_id', 'failure', 'cancel_requested', 'deadline_at', 'created_at',
    'updated_at', 'finished_at']);
SELECT col_type_is('queue', 'sagas', c, t, format('queue.sagas.%s is %s', c, t))
  FROM (VALUES ('id', 'bigint'), ('saga_type', 'text'), ('version', 'integer'),
               ('status', 'text'), ('input', 'jsonb'), ('context', 'jsonb'),
               ('idempotency_key', 'text'), ('current_step', 'text'),
               ('compensating_step', 'text'), ('job_id', 'bigint'), ('failure', 'jsonb'),
               ('cancel_requested', 'boolean'), ('deadline_at', 'timestamp with time zone'),
               ('created_at', 'timestamp with time zone'),
               ('updated_at', 'timestamp with time zone'),
               ('finished_at', 'timestamp with time zone')) v(c, t);
SELECT has_view('queue', 'saga_stats', 'view queue.saga_stats exists');
SELECT columns_are('queue', 'saga_stats', ARRAY[
    'saga_type', 'running', 'compensating', 'completed', 'compensated', 'needs_attention',
    'stale_completions']);
SELECT col_type_is('queue', 'saga_stats', c, t, format('queue.saga_stats.%s is %s', c, t))
  FROM (VALUES ('saga_type', 'text'), ('running', 'bigint'), ('compensating', 'bigint'),
               ('completed', 'bigint'), ('compensated', 'bigint'), ('needs_attention', 'bigint'),
               ('stale_completions', 'bigint')) v(c, t);

-- ----------------------------------------------------------------------
-- Sequences
-- ----------------------------------------------------------------------
SELECT has_sequence('queue', 'queue_id_seq', 'sequence queue.queue_id_seq exists');
SELECT has_sequence('queue', 'job_id_seq', 'sequence queue.job_id_seq exists');
SELECT is((SELECT format_type(seqtypid, NULL) FROM pg_sequence
            WHERE seqrelid = 'queue.queue_id_seq'::regclass),
          'integer', 'queue.queue_id_seq is an integer sequence');
SELECT is((SELECT format_type(seqtypid, NULL) FROM pg_sequence
            WHERE seqrelid = 'queue.job_id_seq'::regclass),
          'bigint', 'queue.job_id_seq is a bigint sequence');
SELECT is(pg_get_serial_sequence('queue.queue', 'id'), 'queue.queue_id_seq',
          'queue.queue_id_seq is owned by queue.queue.id');
SELECT is(pg_get_serial_sequence('queue.job', 'id'), 'queue.job_id_seq',
          'queue.job_id_seq is owned by queue.job.id');
SELECT has_sequence('queue', s, format('sequence queue.%s exists', s))
  FROM unnest(ARRAY['topic_id_seq', 'subscription_id_seq', 'event_id_seq']::name[]) s;
SELECT is((SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = ('queue.' || s)::regclass),
          t, format('queue.%s is an %s sequence', s, t))
  FROM (VALUES ('topic_id_seq', 'integer'), ('subscription_id_seq', 'integer'),
               ('event_id_seq', 'bigint')) v(s, t);
SELECT is(pg_get_serial_sequence('queue.' || t, 'id'), 'queue.' || s,
          format('queue.%s is owned by queue.%s.id', s, t))
  FROM (VALUES ('topic', 'topic_id_seq'), ('subscription', 'subscription_id_seq'),
               ('event', 'event_id_seq')) v(t, s);
SELECT has_sequence('queue', s, format('sequence queue.%s exists', s))
  FROM unnest(ARRAY['saga_definition_id_seq', 'saga_id_seq', 'saga_event_id_seq']::name[]) s;
SELECT is((SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = ('queue.' || s)::regclass),
          t, format('queue.%s is an %s sequence', s, t))
  FROM (VALUES ('saga_definition_id_seq', 'integer'), ('saga_id_seq', 'bigint'),
               ('saga_event_id_seq', 'bigint')) v(s, t);
SELECT is(pg_get_serial_sequence('queue.' || t, 'id'), 'queue.' || s,
          format('queue.%s is owned by queue.%s.id', s, t))
  FROM (VALUES ('saga_definition', 'saga_definition_id_seq'), ('saga', 'saga_id_seq'),
               ('saga_event', 'saga_event_id_seq')) v(t, s);

-- ----------------------------------------------------------------------
-- pg_dump keeps users' data: the tables and sequences are config relations
-- (not queue.access_grant: role OIDs do not survive a dump and restore)
-- ----------------------------------------------------------------------
SELECT set_eq(
    $$SELECT c::regclass::text FROM pg_extension e, unnest(e.extconfig) c
       WHERE e.extname = 'queue'$$,
    ARRAY['queue.queue', 'queue.queue_id_seq', 'queue.job', 'queue.job_id_seq',
          'queue.job_archive', 'queue.topic', 'queue.topic_id_seq', 'queue.subscription',
          'queue.subscription_id_seq', 'queue.event', 'queue.event_id_seq',
          'queue.event_archive', 'queue.saga_definition', 'queue.saga_definition_id_seq',
          'queue.saga', 'queue.saga_id_seq', 'queue.saga_event', 'queue.saga_event_id_seq'],
    'extconfig registers the queue, job, topic, subscription, event and saga tables and their sequences for pg_dump');
SELECT is((SELECT array_length(extconfig, 1) = array_length(extcondition, 1)
             AND (SELECT bool_and(cond = '') FROM unnest(extcondition) cond)
             FROM pg_extension WHERE extname = 'queue'),
          true, 'every config relation is dumped whole (empty condition)');
SELECT is((SELECT count(*)::int FROM pg_depend d
            WHERE d.refclassid = 'pg_extension'::regclass
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'queue')
              AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
              AND d.objid IN ('queue.queue'::regclass, 'queue.job'::regclass,
                              'queue.job_archive'::regclass, 'queue.access_grant'::regclass,
                              'queue.jobs'::regclass,
                              'queue.queue_id_seq'::regclass, 'queue.job_id_seq'::regclass)),
          7, 'the tables, the view and the sequences belong to the extension');
SELECT is((SELECT count(*)::int FROM pg_depend d
            WHERE d.refclassid = 'pg_extension'::regclass
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'queue')
              AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
              AND d.objid IN ('queue.queue_stats'::regclass, 'queue.workers'::regclass)),
          2, 'the monitoring views queue_stats and workers belong to the extension');
SELECT is((SELECT count(*)::int FROM pg_depend d
            WHERE d.refclassid = 'pg_extension'::regclass
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'queue')
              AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
              AND d.objid IN ('queue.topic'::regclass, 'queue.subscription'::regclass,
                              'queue.event'::regclass, 'queue.event_archive'::regclass,
                              'queue.topic_id_seq'::regclass, 'queue.subscription_id_seq'::regclass,
                              'queue.event_id_seq'::regclass, 'queue.events'::regclass,
                              'queue.topic_stats'::regclass, 'queue.blocked_groups'::regclass)),
          10, 'the outbox tables, sequences and views belong to the extension');
SELECT is((SELECT count(*)::int FROM pg_depend d
            WHERE d.refclassid = 'pg_extension'::regclass
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'queue')
              AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
              AND d.objid IN ('queue.saga_definition'::regclass, 'queue.saga'::regclass,
                              'queue.saga_event'::regclass,
                              'queue.saga_definition_id_seq'::regclass,
                              'queue.saga_id_seq'::regclass, 'queue.saga_event_id_seq'::regclass,
                              'queue.sagas'::regclass, 'queue.saga_stats'::regclass)),
          8, 'the saga tables, sequences and views belong to the extension');

SELECT * FROM finish();
ROLLBACK;
