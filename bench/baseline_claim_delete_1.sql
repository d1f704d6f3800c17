-- baseline: claim and finish one row in one statement and one commit, no
-- lease (a worker that dies mid-job loses it, or must hold the transaction
-- open for the whole job).
DELETE FROM bench_naive
 WHERE id = ANY (ARRAY(SELECT id FROM bench_naive ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED));
