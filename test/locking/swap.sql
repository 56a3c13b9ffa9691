-- Two sessions moving between two customers in opposite directions: client 0
-- logs session sw-0 in as sw-a, then as sw-b; client 1 logs sw-1 in as sw-b,
-- then as sw-a.  Each login changes the email, so it writes the profile row
-- of the customer it moves the session to.
\set e random(1, 1000000)
SELECT personalisation.identify('sw-' || :client_id, CASE :client_id WHEN 0 THEN 'sw-a' ELSE 'sw-b' END, 'a' || :e || '@example.com');
SELECT personalisation.identify('sw-' || :client_id, CASE :client_id WHEN 0 THEN 'sw-b' ELSE 'sw-a' END, 'b' || :e || '@example.com');
