-- An email consent change on a session of one of the customers.
\set c random(1, :customers)
\set s random(1, :sessions)
\set granted random(0, 1)
WITH call AS (SELECT personalisation.set_consent('lk-' || :c || '-' || :s, 'email', :granted = 1) AS result)
INSERT INTO locking_calls (kind) SELECT 'consent' FROM call;
