-- A login: each session belongs to one customer, of the same client.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set customer :sid % (500 * :clients)
SELECT personalisation.identify('ls' || :sid, 'lc' || :customer, 'lc' || :customer || '@example.test');
