-- A login: session s of customer c (a session belongs to one customer).
\set c random(1, :customers)
\set s random(1, :sessions)
WITH call AS (SELECT personalisation.identify('lk-' || :c || '-' || :s, 'lk-c' || :c) AS result)
INSERT INTO locking_calls (kind) SELECT 'identify' FROM call;
