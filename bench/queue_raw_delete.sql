-- The baseline: a bare queue table drained by DELETE ... FOR UPDATE SKIP LOCKED.
DELETE FROM bench_bare_queue
 WHERE id IN (SELECT id FROM bench_bare_queue ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
RETURNING id, payload;
