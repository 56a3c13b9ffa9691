-- A login: session s of customer c (a session belongs to one customer).
\set c random(1, :customers)
\set s random(1, :sessions)
SELECT personalisation.identify('lk-' || :c || '-' || :s, 'lk-c' || :c);
