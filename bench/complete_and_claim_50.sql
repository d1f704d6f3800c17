-- queue: the documented leased path, 50 jobs at a time, in one round trip
-- per batch: each call completes the 50 jobs the previous call claimed (by
-- their lease tokens) and claims the next 50 (complete_and_claim).  One
-- commit per 50 jobs.  Needs -M prepared (or extended): :ids and :tokens
-- are arrays; bench/run.sh passes -D ids={} -D tokens={} for the first
-- call.
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.complete_and_claim(:ids::bigint[], :tokens::uuid[], 'bench', 'bench-' || :client_id, 50) \gset
