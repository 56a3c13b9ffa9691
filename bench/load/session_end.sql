-- A page-leave beacon: a cart left behind is abandoned at once.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
SELECT personalisation.track_session_end('ls' || :sid);
