-- claim rate at a fixed backlog: claim_complete_1.sql, except that the
-- statement completing the job also enqueues a replacement, so the backlog
-- stays at its initial size for the whole run.  Two commits per job.
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.claim('bench', 'bench-' || :client_id, 1) \gset
SELECT queue.complete(ids[1], tokens[1]), queue.enqueue('bench', '{"task": "resize-image"}')
  FROM (SELECT :ids::bigint[] AS ids, :tokens::uuid[] AS tokens) t
 WHERE cardinality(ids) > 0;
