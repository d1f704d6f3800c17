-- sagas, no-op worker: claims up to 10 step jobs from each of the three
-- step queues (last step first) and completes them with their tokens.  Each
-- completion moves its saga on in the completing transaction (the next
-- step's job, or the saga completed).  Two commits per queue visited.
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.claim('bench_step3', 'saga-' || :client_id, 10) \gset
SELECT queue.complete_many(:ids::bigint[], :tokens::uuid[]);
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.claim('bench_step2', 'saga-' || :client_id, 10) \gset
SELECT queue.complete_many(:ids::bigint[], :tokens::uuid[]);
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.claim('bench_step1', 'saga-' || :client_id, 10) \gset
SELECT queue.complete_many(:ids::bigint[], :tokens::uuid[]);
