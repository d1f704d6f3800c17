-- queue: the documented leased path, one job at a time, in one round trip
-- per job: each call completes the job the previous call claimed (by its
-- lease token) and claims the next (complete_and_claim).  One commit per
-- job.  Needs -M prepared (or extended): :ids and :tokens are arrays;
-- bench/run.sh passes -D ids={} -D tokens={} for the first call.
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.complete_and_claim(:ids::bigint[], :tokens::uuid[], 'bench', 'bench-' || :client_id, 1) \gset
