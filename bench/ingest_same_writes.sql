-- The floor for tracking a page view: the rows track_page_view must write,
-- written by one hand-written statement with no computation (no decay, no
-- validation, no catalogue read): the idempotency key, the event row in its
-- partition with its index entry, and a rewrite of the session's and the
-- profile's affinity rows at their present size.
\set session random(1, 10000)
\set product random(1, 20000)
\set id random(1, 9000000000000000)
WITH visitor AS (
    SELECT profile_id FROM personalisation.sessions WHERE session_id = 's' || :session
), event_key AS (
    INSERT INTO personalisation.event_keys (event_id, occurred_at) VALUES (:id::text, now())
    ON CONFLICT DO NOTHING RETURNING event_id
), event AS (
    INSERT INTO personalisation.events (event_id, kind, occurred_at, profile_id, session_id, category_id, product_id)
    SELECT event_id, 'page_view', now(), profile_id, 's' || :session, NULL, 'p' || :product
      FROM visitor, event_key RETURNING 1
), affinity AS (
    UPDATE personalisation.affinity a SET decayed_to = now()
      FROM visitor v
     WHERE a.profile_id = v.profile_id AND a.session_id IN ('', 's' || :session) RETURNING 1
)
SELECT (SELECT count(*) FROM event) + (SELECT count(*) FROM affinity);
