-- track_events: a batch of events is recorded exactly as the same events
-- through the typed functions, a retried batch changes nothing, and a
-- refused element fails the whole batch with an error naming it, leaving
-- every table as it was.
BEGIN;
SET LOCAL personalisation.event_retention = '36500d';
SELECT plan(16);

INSERT INTO personalisation.categories VALUES ('te-root', NULL, 'Root'), ('te-cat', 'te-root', 'Cat');
INSERT INTO personalisation.products (product_id, category_id, name, price, brand)
VALUES ('te-p1', 'te-cat', 'P1', 10, 'te-brand'), ('te-p2', 'te-root', 'P2', 20, NULL);

\ir ../ingest_state.sql

-- What a session holds, without its own ids: its events, cart, orders, consent and affinity.
CREATE FUNCTION pg_temp.session_state(session text) RETURNS text LANGUAGE sql AS $$
  SELECT concat_ws('|',
    (SELECT string_agg(concat_ws(',', e.kind, e.occurred_at, e.category_id, e.product_id, e.quantity,
                                 replace(e.order_id, session, ''), e.value, replace(e.event_id, session, '')),
                       ';' ORDER BY e.occurred_at, e.kind)
       FROM personalisation.events e WHERE e.session_id = session),
    (SELECT string_agg(concat_ws(',', c.product_id, c.quantity, c.added_at, c.updated_at), ';' ORDER BY c.product_id)
       FROM personalisation.cart_lines c JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = session),
    (SELECT string_agg(concat_ws(',', c.line_count, c.last_activity_at), ';')
       FROM personalisation.carts c JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = session),
    (SELECT string_agg(concat_ws(',', o.occurred_at, o.line_count, o.total), ';' ORDER BY o.occurred_at)
       FROM personalisation.orders o WHERE o.session_id = session),
    (SELECT string_agg(concat_ws(',', h.channel, h.granted, h.occurred_at), ';' ORDER BY h.occurred_at)
       FROM personalisation.consent_history h WHERE h.session_id = session),
    (SELECT string_agg(concat_ws(',', x.session_id = '', a.dimension, a.key_hash, round(a.score::numeric, 6)), ';'
                       ORDER BY x.session_id = '', a.dimension, a.key_hash)
       FROM personalisation.affinity x JOIN personalisation.sessions s USING (profile_id)
       CROSS JOIN LATERAL personalisation._affinity_entries(x.entries, x.decayed_to, x.session_id <> '',
                                                           '2026-01-01 10:08+00') a
      WHERE s.session_id = session AND x.session_id IN ('', session)))
$$;

-- The same day of a visitor, through the typed functions and as one batch.
SELECT personalisation.track_page_view('te-single', 'te-cat', NULL, '2026-01-01 10:00+00', 'te-single-e1');
SELECT personalisation.track_page_view('te-single', NULL, 'te-p1', '2026-01-01 10:01+00');
SELECT personalisation.track_cart_add('te-single', 'te-p1', 3, '2026-01-01 10:02+00', 'te-single-e2');
SELECT personalisation.track_cart_add('te-single', 'te-p2', 1, '2026-01-01 10:03+00');
SELECT personalisation.track_cart_remove('te-single', 'te-p1', 1, '2026-01-01 10:04+00');
SELECT personalisation.set_consent('te-single', 'email', true, '2026-01-01 10:05+00');
SELECT personalisation.track_purchase('te-single', 'te-single-o1',
  '[{"product_id": "te-p1", "quantity": 2, "unit_price": 10}]', '2026-01-01 10:06+00');
SELECT personalisation.track_cart_remove('te-single', 'te-p2', NULL, '2026-01-01 10:07+00');

SELECT pg_catalog.set_config('te.batch', $$[
  {"kind": "page_view", "session_id": "te-batch", "category_id": "te-cat", "occurred_at": "2026-01-01 10:00+00", "event_id": "te-batch-e1"},
  {"kind": "page_view", "session_id": "te-batch", "product_id": "te-p1", "occurred_at": "2026-01-01 10:01+00"},
  {"kind": "cart_add", "session_id": "te-batch", "product_id": "te-p1", "quantity": 3, "occurred_at": "2026-01-01 10:02+00", "event_id": "te-batch-e2"},
  {"kind": "cart_add", "session_id": "te-batch", "product_id": "te-p2", "occurred_at": "2026-01-01 10:03+00"},
  {"kind": "cart_remove", "session_id": "te-batch", "product_id": "te-p1", "quantity": 1, "occurred_at": "2026-01-01 10:04+00"},
  {"kind": "consent", "session_id": "te-batch", "channel": "email", "granted": true, "occurred_at": "2026-01-01 10:05+00"},
  {"kind": "purchase", "session_id": "te-batch", "order_id": "te-batch-o1", "items": [{"product_id": "te-p1", "quantity": 2, "unit_price": 10}], "occurred_at": "2026-01-01 10:06+00"},
  {"kind": "cart_remove", "session_id": "te-batch", "product_id": "te-p2", "quantity": null, "occurred_at": "2026-01-01 10:07+00"}
]$$, true);
SELECT lives_ok($$SELECT personalisation.track_events(current_setting('te.batch')::jsonb)$$,
                'a batch of every kind of event is tracked');
SELECT is((SELECT count(*) FROM personalisation.events WHERE session_id = 'te-batch'), 7::bigint,
          'each event of the batch is recorded');
SELECT is(pg_temp.session_state('te-batch'), pg_temp.session_state('te-single'),
          'the batch records what the same calls of the typed functions record');

SELECT pg_temp.ingest_state() AS after_batch \gset
SELECT personalisation.track_events(pg_catalog.jsonb_path_query_array(current_setting('te.batch')::jsonb,
                                      '$[*] ? (exists (@.event_id) || exists (@.order_id))'));
SELECT is(pg_temp.ingest_state(), :'after_batch',
          'a retried batch of events with event ids and an order id changes nothing');

SELECT personalisation.track_events('[{"kind": "cart_add", "session_id": "te-now", "product_id": "te-p2"}]');
SELECT results_eq(
  $$SELECT quantity, occurred_at FROM personalisation.events WHERE session_id = 'te-now'$$,
  $$VALUES (1, now())$$,
  'an absent key takes the function''s default: one unit, now()');
SELECT lives_ok($$SELECT personalisation.track_events('[]')$$, 'an empty batch is no error');

-- refused(call, sqlstate, message): the call fails as described and changes nothing.
CREATE FUNCTION pg_temp.refused(call text, state text, message text, description text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  before text := pg_temp.ingest_state();
BEGIN
  RETURN NEXT throws_ok(call, state, message, description);
  RETURN NEXT is(pg_temp.ingest_state(), before, description || ': the batch writes nothing');
END $$;

SELECT * FROM pg_temp.refused(
  $$SELECT personalisation.track_events('[{"kind": "page_view", "session_id": "te-x1"},
                                          {"kind": "page_view", "session_id": "te-x1", "product_id": "te-nope"}]')$$,
  '23503', 'product "te-nope" is not in the catalogue', 'an unknown product in the second event');
SELECT * FROM pg_temp.refused(
  $$SELECT personalisation.track_events('[{"kind": "page_view", "session_id": "te-x2"}, {"kind": "visit", "session_id": "te-x2"}]')$$,
  '22023', 'event 2 has unknown kind "visit"', 'an unknown kind');
SELECT * FROM pg_temp.refused(
  $$SELECT personalisation.track_events('[{"kind": "page_view", "session_id": "te-x3", "prodct_id": "te-p1"}]')$$,
  '22023', 'event 1 has key "prodct_id", which a page_view event does not take', 'a misspelt key');
SELECT * FROM pg_temp.refused(
  $$SELECT personalisation.track_events('[{"kind": "cart_add", "session_id": "te-x4", "product_id": "te-p1", "quantity": 1.5}]')$$,
  '22023', 'event 1 has a "quantity" that is not a whole number of at most 9223372036854775807', 'a fractional quantity');
SELECT * FROM pg_temp.refused(
  $$SELECT personalisation.track_events('{"kind": "page_view", "session_id": "te-x5"}')$$,
  '22023', 'events must be a JSON array', 'an object instead of an array');

ROLLBACK;
