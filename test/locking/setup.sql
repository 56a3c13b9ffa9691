-- test/locking.sh setup: a small catalogue (two categories under one root,
-- six products of three brands), so that every call of the same customer
-- touches the same affinity, cart and order rows.
INSERT INTO personalisation.categories VALUES ('lk-root', NULL, 'Root'), ('lk-a', 'lk-root', 'A'), ('lk-b', 'lk-root', 'B');
INSERT INTO personalisation.products (product_id, category_id, name, price, brand)
SELECT 'lk-p' || i, CASE WHEN i % 2 = 0 THEN 'lk-a' ELSE 'lk-b' END, 'Product ' || i, 5, 'lk-brand' || i % 3
  FROM generate_series(1, 6) i;

-- The ledger of committed calls: each client's call inserts its kind here in
-- the same statement, so the checks count committed calls on the server
-- instead of trusting pgbench's per-script tallies (which can miss one).
CREATE TABLE locking_calls (kind text NOT NULL);
