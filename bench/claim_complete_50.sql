-- queue: the documented leased path, 50 jobs at a time.  Transaction 1
-- claims up to 50 jobs; transaction 2 completes them all with their tokens
-- (complete_many).  Two commits per 50 jobs.  Needs -M prepared (or
-- extended): :ids and :tokens are arrays.
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.claim('bench', 'bench-' || :client_id, 50) \gset
SELECT queue.complete_many(:ids::bigint[], :tokens::uuid[]);
