-- Push or email consent, granted four times out of five, withdrawn otherwise.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set email random(0, 1)
\set grant random(0, 4)
SELECT personalisation.set_consent('ls' || :sid, CASE WHEN :email = 1 THEN 'email' ELSE 'push' END, :grant > 0);
