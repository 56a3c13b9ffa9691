-- The outbound queue, driven with explicit timestamps: claims in order with
-- leases, lease expiry and redelivery, acknowledgement, retries with
-- exponential backoff, dead-lettering, and the exit rules and consent
-- re-checked at claim time.  Messages come from this file's own carts
-- (jo-*); claims may also take other files' messages, so assertions name
-- this file's message ids.
BEGIN;
SELECT plan(37);

SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL personalisation.max_attempts = 3;
SET LOCAL personalisation.retry_backoff = '60s';
SET LOCAL timezone = 'UTC';

-- two steps are enough here: the push and the first email
UPDATE personalisation.journey_steps SET enabled = false WHERE journey = 'abandoned_cart' AND step > 2;
INSERT INTO personalisation.categories VALUES ('jo-cat', NULL, 'Outbox test');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES
  ('jo-lamp', 'jo-cat', 'Lamp', 40);

-- A shopper with push consent and a known, consenting email leaves a lamp
-- in the cart at `at`; run_due then writes the push (at + 30 min) and the
-- first email (at + 60 min).
CREATE FUNCTION pg_temp.abandon(session text, at timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM personalisation.track_cart_add(session, 'jo-lamp', 1, at);
    PERFORM personalisation.set_consent(session, 'push', true, at);
    UPDATE personalisation.profiles p
       SET customer_id = 'cust-' || session, email = session || '@example.test', email_consent = true
      FROM personalisation.sessions s WHERE s.session_id = session AND s.profile_id = p.profile_id;
    PERFORM personalisation.run_due(at + interval '30 minutes');
    PERFORM personalisation.run_due(at + interval '60 minutes');
END
$$;

-- The id of the session's message for a step.
CREATE FUNCTION pg_temp.msg(session text, step_no int) RETURNS bigint LANGUAGE sql AS $$
    SELECT o.message_id FROM personalisation.outbox o
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id = session AND o.step = step_no
$$;

-- The message's state, as status/attempts[/claimed_by].
CREATE FUNCTION pg_temp.state(id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT status || '/' || attempts || coalesce('/' || claimed_by, '')
      FROM personalisation.outbox WHERE message_id = id
$$;

-- Claim as a consumer and keep only this file's messages, in claim order.
CREATE FUNCTION pg_temp.claim(consumer text, n int, at timestamptz, lease interval DEFAULT '5 minutes')
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(c.message_id ORDER BY c.available_at, c.message_id), '{}')
      FROM personalisation.claim_messages(consumer, n, lease, at) c
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id LIKE 'jo-%'
$$;

-------------------------------------------------------------------------------
-- Claims, leases and acknowledgement (2025-09-10).
SELECT pg_temp.abandon('jo-a', '2025-09-10 10:00+00');
SELECT is(pg_temp.claim('w1', 1, '2025-09-10 09:59+00'), '{}'::bigint[], 'nothing is handed out before it is available');
SELECT is(pg_temp.claim('w1', 1, '2025-09-10 11:01+00'), ARRAY[pg_temp.msg('jo-a', 1)], 'the oldest message goes first');
SELECT is(pg_temp.state(pg_temp.msg('jo-a', 1)), 'claimed/1/w1', 'a claim records its consumer and counts the attempt');
SELECT is((SELECT lease_until FROM personalisation.outbox WHERE message_id = pg_temp.msg('jo-a', 1)),
  '2025-09-10 11:06+00'::timestamptz, 'the lease runs from the claim');
SELECT is(pg_temp.claim('w2', 10, '2025-09-10 11:02+00'), ARRAY[pg_temp.msg('jo-a', 2)], 'a leased message is not handed to another consumer');
SELECT is(pg_temp.claim('w3', 10, '2025-09-10 11:03+00'), '{}'::bigint[], 'nothing is left while both leases hold');

-- lease expiry and redelivery
SELECT is(pg_temp.claim('w3', 10, '2025-09-10 11:06+00'), ARRAY[pg_temp.msg('jo-a', 1)], 'an expired lease hands the message to another consumer');
SELECT is(pg_temp.state(pg_temp.msg('jo-a', 1)), 'claimed/2/w3', 'the redelivery counts as a second attempt');
SELECT is(personalisation.ack_message(pg_temp.msg('jo-a', 1), '2025-09-10 11:07+00'), true, 'the consumer acknowledges delivery');
SELECT is(pg_temp.state(pg_temp.msg('jo-a', 1)), 'delivered/2/w3', 'the message is delivered');
SELECT is(personalisation.ack_message(pg_temp.msg('jo-a', 1), '2025-09-10 11:08+00'), false, 'a retried acknowledgement changes nothing');
SELECT is(pg_temp.claim('w4', 10, '2025-09-10 12:00+00'), ARRAY[pg_temp.msg('jo-a', 2)], 'a delivered message is never handed out again, a lapsed one is');

-------------------------------------------------------------------------------
-- Failure, exponential backoff and dead-lettering after max_attempts (3).
SELECT is(personalisation.fail_message(pg_temp.msg('jo-a', 2), 'smtp 451 try later', '2025-09-10 12:01+00'), 'pending',
  'a failed message goes back to the queue');
SELECT is((SELECT available_at FROM personalisation.outbox WHERE message_id = pg_temp.msg('jo-a', 2)),
  '2025-09-10 12:03+00'::timestamptz, 'after its second attempt it waits twice retry_backoff');
SELECT is(pg_temp.claim('w5', 10, '2025-09-10 12:02+00'), '{}'::bigint[], 'it is not retried before its backoff');
SELECT is(pg_temp.claim('w5', 10, '2025-09-10 12:03+00'), ARRAY[pg_temp.msg('jo-a', 2)], 'it is retried after its backoff');
SELECT is(personalisation.fail_message(pg_temp.msg('jo-a', 2), 'smtp 550 mailbox unavailable', '2025-09-10 12:04+00'), 'dead',
  'the third failed attempt dead-letters the message');
SELECT is((SELECT status || ': ' || last_error FROM personalisation.outbox WHERE message_id = pg_temp.msg('jo-a', 2)),
  'dead: smtp 550 mailbox unavailable', 'the dead letter keeps the last error');
SELECT is(pg_temp.claim('w5', 10, '2025-09-20 00:00+00'), '{}'::bigint[], 'a dead letter is never handed out');

-- a message whose lease lapses with every attempt spent is dead-lettered too
SET LOCAL personalisation.max_attempts = 1;
SELECT pg_temp.abandon('jo-b', '2025-09-11 10:00+00');
SELECT is(pg_temp.claim('w6', 1, '2025-09-11 11:00+00'), ARRAY[pg_temp.msg('jo-b', 1)], 'the message is claimed once');
SELECT is(pg_temp.claim('w7', 1, '2025-09-11 12:00+00'), ARRAY[pg_temp.msg('jo-b', 2)], 'its lapsed lease does not hand it out again');
SELECT is((SELECT status || ': ' || last_error FROM personalisation.outbox WHERE message_id = pg_temp.msg('jo-b', 1)),
  'dead: lease of w6 lapsed on attempt 1', 'it is dead-lettered, saying whose lease lapsed');
SELECT personalisation.ack_message(pg_temp.msg('jo-b', 2), '2025-09-11 12:01+00');
SET LOCAL personalisation.max_attempts = 3;

-------------------------------------------------------------------------------
-- Consent and exit rules re-checked at claim time (2025-09-12).  The
-- changes are made behind the hooks' backs (plain UPDATE and INSERT), so
-- only the claim-time check can catch them.
SELECT pg_temp.abandon('jo-c', '2025-09-12 10:00+00');
UPDATE personalisation.sessions SET push_consent = false, push_consent_at = '2025-09-12 10:45+00' WHERE session_id = 'jo-c';
SELECT is(pg_temp.claim('w8', 10, '2025-09-12 11:00+00'), ARRAY[pg_temp.msg('jo-c', 2)], 'a push whose consent was withdrawn is not handed out');
SELECT is((SELECT status || ': ' || reason FROM personalisation.outbox WHERE message_id = pg_temp.msg('jo-c', 1)),
  'suppressed: push_consent_withdrawn', 'it becomes a suppressed row with its reason');
SELECT personalisation.ack_message(pg_temp.msg('jo-c', 2), '2025-09-12 11:01+00');

SELECT pg_temp.abandon('jo-d', '2025-09-13 10:00+00');
INSERT INTO personalisation.orders (order_id, profile_id, session_id, occurred_at, line_count, total)
  SELECT 'jo-d-order', profile_id, 'jo-d', '2025-09-13 10:50+00', 1, 40 FROM personalisation.sessions WHERE session_id = 'jo-d';
SELECT is(pg_temp.claim('w8', 10, '2025-09-13 11:00+00'), '{}'::bigint[], 'nothing is handed out after a purchase');
SELECT is(pg_temp.state(pg_temp.msg('jo-d', 1)) || ' ' || pg_temp.state(pg_temp.msg('jo-d', 2)), 'cancelled/0 cancelled/0',
  'the purchase cancels both messages at claim time');

-- and through set_consent, the queued email is suppressed at once
SELECT pg_temp.abandon('jo-e', '2025-09-14 10:00+00');
SELECT personalisation.set_consent('jo-e', 'email', false, '2025-09-14 11:00+00');
SELECT is(pg_temp.state(pg_temp.msg('jo-e', 2)), 'suppressed/0', 'withdrawing consent between enqueue and claim suppresses the message');
SELECT is(pg_temp.claim('w9', 10, '2025-09-14 11:01+00'), ARRAY[pg_temp.msg('jo-e', 1)], 'and only the push is handed out');
SELECT personalisation.ack_message(pg_temp.msg('jo-e', 1), '2025-09-14 11:02+00');

-------------------------------------------------------------------------------
-- Acknowledging a batch at once (2025-09-15).
SELECT pg_temp.abandon('jo-f', '2025-09-15 10:00+00');
SELECT pg_temp.abandon('jo-g', '2025-09-15 10:00+00');
SELECT is(cardinality(pg_temp.claim('w10', 10, '2025-09-15 11:01+00')), 4, 'a consumer claims a batch');
SELECT throws_ok(format('SELECT personalisation.ack_messages(ARRAY[%s, %s])', pg_temp.msg('jo-f', 1), pg_temp.msg('jo-e', 2)),
  '55000', format('message %s cannot be acknowledged', pg_temp.msg('jo-e', 2)),
  'a batch naming a message that is not claimed is refused whole');
SELECT is(personalisation.ack_messages(ARRAY[pg_temp.msg('jo-f', 1), pg_temp.msg('jo-f', 2), pg_temp.msg('jo-g', 1),
                                             pg_temp.msg('jo-g', 2), pg_temp.msg('jo-a', 1)], '2025-09-15 11:02+00'), 4,
  'a batch acknowledgement marks the claimed messages and passes over ones delivered before');

-------------------------------------------------------------------------------
-- Bad calls are refused.
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('w', 0)$$, '22023', 'max_messages 0 is not positive', 'a claim of no messages is refused');
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('w', 10, '-1 minute')$$, '22023', NULL, 'a negative lease is refused');
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages(NULL)$$, '22004', 'consumer must not be null', 'a claim without a consumer is refused');
SELECT throws_ok($$SELECT personalisation.ack_message(-1)$$, 'P0002', 'message -1 is not in the outbox', 'an unknown message is refused');
SELECT throws_ok(format('SELECT personalisation.ack_message(%s)', pg_temp.msg('jo-e', 2)), '55000',
  format('message %s cannot be acknowledged', pg_temp.msg('jo-e', 2)), 'a message that was not claimed cannot be acknowledged');
SELECT throws_ok(format('SELECT personalisation.fail_message(%s, NULL)', pg_temp.msg('jo-e', 1)), '22004',
  'error must not be null', 'a failure without its error is refused');

SELECT * FROM finish();
ROLLBACK;
