-- baseline: claim and finish up to 50 rows in one statement and one commit.
DELETE FROM bench_naive
 WHERE id = ANY (ARRAY(SELECT id FROM bench_naive ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED));
