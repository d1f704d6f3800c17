-- queue: the documented leased path, one job at a time.  Transaction 1
-- claims a job (and its lease token); transaction 2 completes it with the
-- token.  Two commits per job.  An empty claim (backlog drained) completes
-- nothing.  Needs -M prepared (or extended): :ids and :tokens are arrays.
SELECT coalesce(array_agg(job_id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens
  FROM queue.claim('bench', 'bench-' || :client_id, 1) \gset
SELECT queue.complete(ids[1], tokens[1])
  FROM (SELECT :ids::bigint[] AS ids, :tokens::uuid[] AS tokens) t
 WHERE cardinality(ids) > 0;
