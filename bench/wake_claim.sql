-- wake-up latency, worker: a claim that waits for work (up to 1 s) and, in
-- the claim's own transaction, records its sample: clock_timestamp() when
-- the claim returned minus the job's created_at (its enqueue call, just
-- before the producer's commit).  Then it completes the job with its token.
-- An empty claim (the wait ran out) records and completes nothing.
WITH c AS (
    SELECT job_id, lease_token, clock_timestamp() - enqueued_at AS latency
      FROM queue.claim('wake', 'wake-' || :client_id, 1, wait => '1 second')
), s AS (
    INSERT INTO bench_wake_sample (job_id, latency) SELECT job_id, latency FROM c
)
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM c \gset
SELECT queue.complete_many(:ids::bigint[], :tokens::uuid[]);
