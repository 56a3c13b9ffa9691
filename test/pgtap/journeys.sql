-- Abandoned-cart journeys, driven with explicit timestamps: the four-step
-- timeline, exit rules, consent, restarts, caps, quiet hours, catch-up,
-- holdout, merges, the report and the pg_cron registration.  Other test
-- files leave carts behind and run_due processes every cart, so every
-- assertion looks at this file's own sessions (jt-*) only.
BEGIN;
SELECT plan(76);

SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 3;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL timezone = 'UTC';

INSERT INTO personalisation.categories VALUES ('jt-cat', NULL, 'Journey test');
INSERT INTO personalisation.products (product_id, category_id, name, price, url, image_url) VALUES
  ('jt-kettle', 'jt-cat', 'Kettle', 30, 'https://shop.test/kettle', 'https://img.test/kettle.jpg'),
  ('jt-mug', 'jt-cat', 'Mug', 5, 'https://shop.test/mug', 'https://img.test/mug.jpg');

-- A shopper puts two kettles in the cart at `at`; push and a known email
-- with consent are optional.  Returns the profile.
CREATE FUNCTION pg_temp.shopper(session text, at timestamptz, push boolean, address text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    profile bigint;
BEGIN
    PERFORM personalisation.track_cart_add(session, 'jt-kettle', 2, at);
    SELECT s.profile_id INTO profile FROM personalisation.sessions s WHERE s.session_id = session;
    IF push THEN
        PERFORM personalisation.set_consent(session, 'push', true, at);
    END IF;
    IF address IS NOT NULL THEN
        UPDATE personalisation.profiles
           SET customer_id = 'cust-' || session, email = address, email_consent = true
         WHERE profile_id = profile;
    END IF;
    RETURN profile;
END
$$;

-- What each step of the session's runs did, e.g. '1:sent 2:skipped(late)'.
CREATE FUNCTION pg_temp.trail(session text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(s.step || ':' || s.outcome || coalesce('(' || s.reason || ')', ''), ' '
                               ORDER BY s.run_id, s.step), '')
      FROM personalisation.journey_run_steps s
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id = session
$$;

-- The session's outbox messages, e.g. '1:push:pending 2:email:cancelled'.
CREATE FUNCTION pg_temp.messages(session text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(o.step || ':' || o.channel || ':' || o.status, ' '
                               ORDER BY o.run_id, o.step), '')
      FROM personalisation.outbox o
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id = session
$$;

-- The payload of one step's message for the session.
CREATE FUNCTION pg_temp.payload(session text, step_no int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT o.payload FROM personalisation.outbox o
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id = session AND o.step = step_no
$$;

-- Why and until when the session's run waits.
CREATE FUNCTION pg_temp.waiting(session text) RETURNS text LANGUAGE sql AS $$
    SELECT wait_reason || ' until ' || next_due_at FROM personalisation.journey_runs WHERE session_id = session
$$;

-- The session's run, as status[/end_reason].
CREATE FUNCTION pg_temp.run_state(session text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(r.status || coalesce('/' || r.end_reason, ''), ' ' ORDER BY r.run_id)
      FROM personalisation.journey_runs r WHERE r.session_id = session
$$;

-------------------------------------------------------------------------------
-- The default journey is data.
SELECT results_eq(
  $$SELECT step, delay, channel, 'incentive' = ANY (blocks), 'social_proof' = ANY (blocks)
      FROM personalisation.journey_steps WHERE journey = 'abandoned_cart' ORDER BY step$$,
  $$VALUES (1, interval '0', 'push', false, false), (2, interval '60 minutes', 'email', false, false),
           (3, interval '24 hours', 'email', false, true), (4, interval '72 hours', 'email', true, false)$$,
  'the default journey is push at once, then emails at 60 minutes, 24 hours (social proof) and 72 hours (incentive)');

-------------------------------------------------------------------------------
-- The full four-step timeline (2025-03-03).
SELECT pg_temp.shopper('jt-a', '2025-03-03 10:00+00', true, 'a@example.test');
-- social proof: someone else viewed and bought the kettle, a third person viewed it
SELECT personalisation.track_page_view('jt-a-buyer', NULL, 'jt-kettle', '2025-03-03 11:00+00');
SELECT personalisation.track_purchase('jt-a-buyer', 'jt-a-order',
  '[{"product_id": "jt-kettle", "quantity": 1, "unit_price": 30}]', '2025-03-03 11:05+00');
SELECT personalisation.track_page_view('jt-a-viewer', NULL, 'jt-kettle', '2025-03-03 12:00+00');
SELECT personalisation.track_page_view('jt-a-viewer', NULL, 'jt-kettle', '2025-03-03 12:01+00');
SELECT personalisation.track_page_view('jt-a', NULL, 'jt-kettle', '2025-03-03 12:02+00');

SELECT personalisation.run_due('2025-03-03 10:29+00');
SELECT is(pg_temp.run_state('jt-a'), NULL, 'a cart idle for less than abandon_after is not declared');

SELECT personalisation.run_due('2025-03-03 10:30+00');
SELECT is(pg_temp.messages('jt-a'), '1:push:pending', 'the push goes out as soon as the cart is declared abandoned');
SELECT is(pg_temp.payload('jt-a', 1) -> 'items',
  '[{"product_id": "jt-kettle", "name": "Kettle", "quantity": 2, "unit_price": 30,
     "url": "https://shop.test/kettle", "image_url": "https://img.test/kettle.jpg"}]'::jsonb,
  'the push carries the abandoned items with name, quantity, price, url and image');
SELECT is(pg_temp.payload('jt-a', 1) -> 'recipient' ->> 'session_id', 'jt-a',
  'the push names the browser session it goes to');
SELECT is((SELECT abandoned_at FROM personalisation.journey_runs WHERE session_id = 'jt-a'),
  '2025-03-03 10:30+00'::timestamptz, 'the cart counts as abandoned abandon_after past its last activity');

SELECT personalisation.run_due('2025-03-03 10:59+00');
SELECT is(pg_temp.messages('jt-a'), '1:push:pending', 'nothing more before 60 minutes');

SELECT personalisation.run_due('2025-03-03 11:00+00');
SELECT is(pg_temp.messages('jt-a'), '1:push:pending 2:email:pending', 'the first email goes out 60 minutes after the last cart activity');
SELECT is(pg_temp.payload('jt-a', 2) -> 'recipient' ->> 'email', 'a@example.test', 'the email names its address');
SELECT is(pg_temp.payload('jt-a', 2) -> 'recommendations', '[]'::jsonb, 'recommendations are present and empty until complementarity provides them');

SELECT personalisation.run_due('2025-03-04 10:00+00');
SELECT is(pg_temp.messages('jt-a'), '1:push:pending 2:email:pending 3:email:pending', 'the second email goes out at 24 hours');
SELECT is(pg_temp.payload('jt-a', 3) -> 'social_proof',
  '[{"product_id": "jt-kettle", "bought": 1, "viewed": 2,
     "from": "2025-02-25T10:00:00+00:00", "to": "2025-03-04T10:00:00+00:00"}]'::jsonb,
  'social proof counts the other people who bought and viewed each item in the window');

SELECT personalisation.run_due('2025-03-06 10:00+00');
SELECT is(pg_temp.messages('jt-a'), '1:push:pending 2:email:pending 3:email:pending 4:email:pending', 'the third email goes out at 72 hours');
SELECT is((pg_temp.payload('jt-a', 4) -> 'incentive') - 'code',
  '{"kind": "percent", "value": 10, "expires_at": "2025-03-08T10:00:00+00:00"}'::jsonb,
  'the incentive says its kind and value and expires coupon_validity after sending');
SELECT ok(pg_temp.payload('jt-a', 4) -> 'incentive' ->> 'code' ~ '^[0-9A-Z]{4,}-[0-9A-Z]{8}$', 'the incentive carries a coupon code');
SELECT is((SELECT c.code FROM personalisation.coupons c JOIN personalisation.journey_runs r USING (profile_id, run_id)
            WHERE r.session_id = 'jt-a'), pg_temp.payload('jt-a', 4) -> 'incentive' ->> 'code',
  'the coupon is recorded for the checkout to honour');
SELECT is(pg_temp.run_state('jt-a'), 'completed', 'the run completes after its last step');

SELECT personalisation.run_due('2025-03-06 10:00+00');
SELECT personalisation.run_due('2025-03-07 10:00+00');
SELECT is(pg_temp.trail('jt-a'), '1:sent 2:sent 3:sent 4:sent', 'repeated run_due calls write no step twice');
SELECT is((SELECT count(*) FROM personalisation.journey_runs WHERE session_id = 'jt-a'), 1::bigint,
  'a cart left as it is is declared abandoned only once');

SELECT personalisation.track_cart_add('jt-a', 'jt-mug', 1, '2025-03-07 11:00+00');
SELECT personalisation.run_due('2025-03-07 11:30+00');
SELECT is(pg_temp.run_state('jt-a'), 'completed active', 'new activity after the run starts a new episode and a new run');

-------------------------------------------------------------------------------
-- A purchase after the first email stops the rest (2025-03-13).
SELECT pg_temp.shopper('jt-b', '2025-03-13 10:00+00', true, 'b@example.test');
SELECT personalisation.run_due('2025-03-13 10:30+00');
SELECT personalisation.run_due('2025-03-13 11:00+00');
SELECT is(pg_temp.messages('jt-b'), '1:push:pending 2:email:pending', 'push and first email are queued');
SELECT personalisation.track_purchase('jt-b', 'jt-b-order',
  '[{"product_id": "jt-kettle", "quantity": 2, "unit_price": 30}]', '2025-03-13 11:10+00');
SELECT is(pg_temp.run_state('jt-b'), 'ended/purchased', 'the purchase ends the run in its own transaction');
SELECT is(pg_temp.messages('jt-b'), '1:push:cancelled 2:email:cancelled', 'the purchase cancels the queued messages');
SELECT personalisation.run_due('2025-03-14 10:00+00');
SELECT personalisation.run_due('2025-03-16 10:00+00');
SELECT is(pg_temp.trail('jt-b'), '1:sent 2:sent', 'no step runs after the purchase');

-------------------------------------------------------------------------------
-- An emptied cart stops it (2025-03-23).
SELECT pg_temp.shopper('jt-c', '2025-03-23 10:00+00', true, 'c@example.test');
SELECT personalisation.run_due('2025-03-23 10:30+00');
SELECT personalisation.track_cart_remove('jt-c', 'jt-kettle', NULL, '2025-03-23 10:40+00');
SELECT is(pg_temp.run_state('jt-c'), 'ended/cart_emptied', 'emptying the cart ends the run');
SELECT is(pg_temp.messages('jt-c'), '1:push:cancelled', 'and cancels its queued push');
SELECT personalisation.run_due('2025-03-26 10:00+00');
SELECT is(pg_temp.trail('jt-c'), '1:sent', 'no step runs after the cart is emptied');

-------------------------------------------------------------------------------
-- Push only with that browser's consent; email only to a known, consenting profile (2025-04-02).
SELECT pg_temp.shopper('jt-d', '2025-04-02 10:00+00', false, 'd@example.test');
SELECT pg_temp.shopper('jt-e1', '2025-04-02 10:00+00', true, NULL);
SELECT pg_temp.shopper('jt-e2', '2025-04-02 10:00+00', true, 'e2@example.test');
UPDATE personalisation.profiles p SET email_consent = false
  FROM personalisation.sessions s WHERE s.session_id = 'jt-e2' AND s.profile_id = p.profile_id;
SELECT personalisation.run_due('2025-04-02 11:00+00');
SELECT is(pg_temp.trail('jt-d'), '1:skipped(no_push_consent) 2:sent', 'without push consent the push is skipped with its reason and the email still goes');
SELECT is(pg_temp.messages('jt-d'), '2:email:pending', 'no push message is written without consent');
SELECT is(pg_temp.trail('jt-e1'), '1:sent 2:skipped(no_email_address)', 'an anonymous profile gets no email');
SELECT is(pg_temp.trail('jt-e2'), '1:sent 2:skipped(no_email_consent)', 'a known profile without email consent gets no email');

-------------------------------------------------------------------------------
-- Activity on the cart restarts the clock instead of starting a second run (2025-04-22).
SELECT pg_temp.shopper('jt-f', '2025-04-22 10:00+00', true, 'f@example.test');
SELECT personalisation.run_due('2025-04-22 10:30+00');
SELECT personalisation.track_cart_add('jt-f', 'jt-mug', 1, '2025-04-22 10:45+00');
SELECT personalisation.run_due('2025-04-22 11:00+00');
SELECT is(pg_temp.messages('jt-f'), '1:push:pending', 'the 60-minute email waits: the cart was active again');
SELECT personalisation.run_due('2025-04-22 11:44+00');
SELECT is(pg_temp.messages('jt-f'), '1:push:pending', 'delays count from the new last activity');
SELECT personalisation.run_due('2025-04-22 11:45+00');
SELECT is(pg_temp.messages('jt-f'), '1:push:pending 2:email:pending', 'the email goes 60 minutes after the last activity');
SELECT is(jsonb_array_length(pg_temp.payload('jt-f', 2) -> 'items'), 2, 'and lists the cart as it is now');
SELECT is(pg_temp.run_state('jt-f'), 'active', 'one run, not two');

-------------------------------------------------------------------------------
-- track_session_end declares at once (2025-05-02).
SELECT pg_temp.shopper('jt-g', '2025-05-02 10:00+00', true, NULL);
SELECT is(personalisation.track_session_end('jt-g', '2025-05-02 10:05+00'), true, 'a page-leave beacon declares the cart abandoned at once');
SELECT is(personalisation.track_session_end('jt-g', '2025-05-02 10:06+00'), false, 'a second beacon declares nothing more');
SELECT personalisation.run_due('2025-05-02 10:05+00');
SELECT is((SELECT created_at FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
            WHERE r.session_id = 'jt-g' AND o.step = 1), '2025-05-02 10:05+00'::timestamptz,
  'the push goes out at the session end, not abandon_after later');
SELECT throws_ok($$SELECT personalisation.track_session_end('jt-nobody', '2025-05-02 10:05+00')$$,
  '23503', 'session "jt-nobody" is not known', 'an unknown session is refused');

-------------------------------------------------------------------------------
-- The frequency cap postpones, never drops (2025-05-12).
SET LOCAL personalisation.frequency_cap = 1;
SELECT pg_temp.shopper('jt-h', '2025-05-12 10:00+00', true, 'h@example.test');
SELECT personalisation.run_due('2025-05-12 10:30+00');
SELECT personalisation.run_due('2025-05-12 11:00+00');
SELECT is(pg_temp.messages('jt-h'), '1:push:pending', 'a second message within 24 hours waits under a cap of 1');
SELECT is(pg_temp.waiting('jt-h'),
  'frequency_cap until 2025-05-13 10:30:00+00', 'the run says why and until when it waits');
SELECT personalisation.run_due('2025-05-13 10:30+00');
SELECT is(pg_temp.trail('jt-h'), '1:sent 2:sent', 'the postponed email goes out when the rolling day frees up');
SET LOCAL personalisation.frequency_cap = 3;

-------------------------------------------------------------------------------
-- Quiet hours postpone, never drop, in their own time zone (2025-05-22).
SET LOCAL personalisation.quiet_hours = '22:00-08:00';
SET LOCAL personalisation.quiet_hours_timezone = 'Europe/Paris';
SELECT pg_temp.shopper('jt-i', '2025-05-22 20:45+00', true, NULL);   -- 22:45 in Paris
SELECT personalisation.run_due('2025-05-22 21:15+00');
SELECT is(pg_temp.messages('jt-i'), '', 'no push inside the quiet hours');
SELECT is(pg_temp.waiting('jt-i'),
  'quiet_hours until 2025-05-23 06:00:00+00', 'the push waits for 08:00 in Paris');
SELECT personalisation.run_due('2025-05-23 06:00+00');
SELECT is(pg_temp.messages('jt-i'), '1:push:pending', 'and then goes out, though later than its max_lateness');
SET LOCAL personalisation.quiet_hours = '';
SELECT throws_ok($$SET personalisation.quiet_hours = '8-22'$$, '22023', NULL, 'malformed quiet hours are refused');
SELECT throws_ok($$SET personalisation.quiet_hours_timezone = 'Mars/Olympus'$$, '22023', NULL, 'an unknown time zone is refused');

-------------------------------------------------------------------------------
-- Catch-up after an outage: the first run_due comes 73 hours late (2025-06-01).
SELECT pg_temp.shopper('jt-j', '2025-06-01 10:00+00', true, 'j@example.test');
SELECT personalisation.run_due('2025-06-04 11:00+00');
SELECT is(pg_temp.trail('jt-j'), '1:skipped(late) 2:skipped(late) 3:skipped(late) 4:sent',
  'steps that became pointless are skipped as late and the one still timely goes out');
-- a cart idle beyond every step's lateness is not declared at all
SELECT pg_temp.shopper('jt-j2', '2025-06-01 10:00+00', true, 'j2@example.test');
SELECT personalisation.run_due('2025-06-06 11:00+00');
SELECT is(pg_temp.run_state('jt-j2'), NULL, 'a cart idle past the journey horizon is not declared');

-------------------------------------------------------------------------------
-- Holdout: the sequence runs without sending and records what it would have sent (2025-06-11).
SET LOCAL personalisation.journey_holdout_percent = 100;
SELECT pg_temp.shopper('jt-k', '2025-06-11 10:00+00', true, 'k@example.test');
SELECT personalisation.run_due('2025-06-11 11:00+00');
SET LOCAL personalisation.journey_holdout_percent = 0;
SELECT is((SELECT arm FROM personalisation.journey_runs WHERE session_id = 'jt-k'), 'holdout', 'the cart falls in the holdout arm');
SELECT is(pg_temp.trail('jt-k'), '1:held 2:held', 'holdout steps are held, not sent');
SELECT is(pg_temp.messages('jt-k'), '', 'nothing reaches the outbox for the holdout');
SELECT is((SELECT s.payload -> 'items' -> 0 ->> 'product_id' FROM personalisation.journey_run_steps s
             JOIN personalisation.journey_runs r USING (profile_id, run_id) WHERE r.session_id = 'jt-k' AND s.step = 2),
  'jt-kettle', 'the held step records the message that would have been sent');
-- the arm is sticky: a hash of journey and profile, the same for every cart of the profile
SET LOCAL personalisation.journey_holdout_percent = 50;
SELECT pg_temp.shopper('jt-k' || i, '2025-06-12 10:00+00', false, NULL) FROM generate_series(1, 12) i;
SELECT personalisation.run_due('2025-06-12 10:30+00');
SELECT personalisation.track_cart_remove('jt-k' || i, 'jt-kettle', NULL, '2025-06-12 11:00+00') FROM generate_series(1, 12) i;
SELECT personalisation.track_cart_add('jt-k' || i, 'jt-mug', 1, '2025-06-12 12:00+00') FROM generate_series(1, 12) i;
SELECT personalisation.run_due('2025-06-12 12:30+00');
SET LOCAL personalisation.journey_holdout_percent = 0;
SELECT results_eq(
  $$SELECT count(*), count(DISTINCT arm), count(DISTINCT (profile_id, arm))
      FROM personalisation.journey_runs WHERE session_id ~ '^jt-k[0-9]+$'$$,
  $$VALUES (24::bigint, 2::bigint, 12::bigint)$$,
  'with a 50% holdout both arms occur, and each profile keeps its arm from one cart to the next');

-------------------------------------------------------------------------------
-- Consent withdrawn while a message waits (2025-06-21).
SELECT pg_temp.shopper('jt-l', '2025-06-21 10:00+00', true, 'l@example.test');
SELECT pg_temp.shopper('jt-l2', '2025-06-21 10:00+00', true, 'l2@example.test');
SELECT personalisation.run_due('2025-06-21 11:00+00');
SELECT personalisation.set_consent('jt-l', 'email', false, '2025-06-21 11:01+00');
SELECT is(pg_temp.messages('jt-l'), '1:push:pending 2:email:suppressed', 'withdrawing email consent suppresses the queued email');
SELECT is(pg_temp.run_state('jt-l'), 'ended/consent_withdrawn', 'and ends the run: every remaining step is an email');
SELECT personalisation.set_consent('jt-l2', 'push', false, '2025-06-21 11:01+00');
SELECT is(pg_temp.messages('jt-l2'), '1:push:suppressed 2:email:pending', 'withdrawing push consent suppresses only the push');
SELECT is(pg_temp.run_state('jt-l2'), 'active', 'and the emails go on');

-------------------------------------------------------------------------------
-- An anonymous cart identified later continues on the known profile (2025-07-01).
SELECT pg_temp.shopper('jt-m', '2025-07-01 10:00+00', true, NULL);
SELECT personalisation.run_due('2025-07-01 10:30+00');
SELECT personalisation.track_page_view('jt-m-login', occurred_at => '2025-07-01 09:00+00');
UPDATE personalisation.profiles p SET customer_id = 'cust-m', email = 'm@example.test', email_consent = true
  FROM personalisation.sessions s WHERE s.session_id = 'jt-m-login' AND s.profile_id = p.profile_id;
CREATE TEMP TABLE jt_merge AS
  SELECT (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'jt-m') AS anon,
         (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'jt-m-login') AS known;
-- the visitor logs in as the known customer: identify merges the anonymous profile
SELECT personalisation.identify('jt-m', 'cust-m', occurred_at => '2025-07-01 10:40+00');
SELECT is((SELECT profile_id FROM personalisation.journey_runs WHERE session_id = 'jt-m'), (SELECT known FROM jt_merge),
  'the merge moves the run to the known profile');
SELECT personalisation.run_due('2025-07-01 11:00+00');
SELECT is(pg_temp.payload('jt-m', 2) -> 'recipient' ->> 'email', 'm@example.test', 'the sequence continues with an email to the known profile');
SELECT is((SELECT count(*) FROM personalisation.outbox WHERE profile_id = (SELECT known FROM jt_merge)), 2::bigint,
  'the push sent before the merge moved along with its run');
SELECT personalisation.unmerge(merge_id) FROM personalisation.merges
 WHERE from_profile_id = (SELECT anon FROM jt_merge);
SELECT is((SELECT profile_id FROM personalisation.journey_runs WHERE session_id = 'jt-m'), (SELECT anon FROM jt_merge),
  'undoing the merge moves the run back');
SELECT is((SELECT count(*) FROM personalisation.outbox WHERE profile_id = (SELECT anon FROM jt_merge)), 2::bigint,
  'with its messages');
SELECT is((SELECT moved -> 'journeys' FROM personalisation.merges WHERE from_profile_id = (SELECT anon FROM jt_merge)),
  '1'::jsonb, 'the merge ledger counts the run among what moved');

-------------------------------------------------------------------------------
-- Steps are data: switching one off with an UPDATE (2025-07-11).
UPDATE personalisation.journey_steps SET enabled = false WHERE journey = 'abandoned_cart' AND step = 2;
SELECT pg_temp.shopper('jt-n', '2025-07-11 10:00+00', true, 'n@example.test');
SELECT personalisation.run_due('2025-07-11 10:30+00');
SELECT personalisation.run_due('2025-07-12 10:00+00');
SELECT is(pg_temp.trail('jt-n'), '1:sent 3:sent', 'a switched-off step is left out of the sequence');
UPDATE personalisation.journey_steps SET min_cart_value = 100 WHERE journey = 'abandoned_cart' AND step = 4;
SELECT personalisation.run_due('2025-07-14 10:00+00');
SELECT is(pg_temp.trail('jt-n'), '1:sent 3:sent 4:skipped(below_min_cart_value)', 'a step whose condition fails is skipped with its reason');
UPDATE personalisation.journey_steps SET enabled = true, min_cart_value = NULL WHERE journey = 'abandoned_cart';

-------------------------------------------------------------------------------
-- The analyst report, on a small hand-checked set (2025-08-01): three carts
-- in the treatment arm, two in the holdout.  Earlier runs are cleared first
-- (inside this transaction) so that only this set is counted.
DELETE FROM personalisation.journey_run_steps;
DELETE FROM personalisation.outbox;
DELETE FROM personalisation.journey_runs;
SELECT pg_temp.shopper('jt-r' || i, '2025-08-01 10:00+00', true, 'r' || i || '@example.test') FROM generate_series(1, 3) i;
SELECT personalisation.run_due('2025-08-01 10:30+00');
SET LOCAL personalisation.journey_holdout_percent = 100;
SELECT pg_temp.shopper('jt-h' || i, '2025-08-01 10:10+00', true, 'h' || i || '@example.test') FROM generate_series(1, 2) i;
SELECT personalisation.run_due('2025-08-01 10:40+00');
SET LOCAL personalisation.journey_holdout_percent = 0;
SELECT personalisation.run_due('2025-08-01 11:10+00');
SELECT personalisation.ack_message(m.message_id, '2025-08-01 11:11+00')
  FROM personalisation.claim_messages('jt-sender', 100, '5 minutes', '2025-08-01 11:11+00') m
  JOIN personalisation.journey_runs r USING (profile_id, run_id) WHERE r.session_id = 'jt-r2' AND m.step = 1;
-- r1 buys after the first email (recovered, credited to step 2); h1 buys (holdout recovered);
-- r2 buys eight days later, outside the seven-day attribution window
SELECT personalisation.track_purchase('jt-r1', 'jt-r1-order', '[{"product_id": "jt-kettle", "quantity": 2, "unit_price": 30}]', '2025-08-01 12:00+00');
SELECT personalisation.track_purchase('jt-h1', 'jt-h1-order', '[{"product_id": "jt-mug", "quantity": 1, "unit_price": 5}]', '2025-08-01 12:00+00');
SELECT personalisation.track_purchase('jt-r2', 'jt-r2-order', '[{"product_id": "jt-kettle", "quantity": 1, "unit_price": 30}]', '2025-08-09 12:00+00');
SELECT results_eq(
  $$SELECT arm, step, carts_abandoned, messages_sent, messages_held, messages_delivered,
           carts_recovered, recovered_revenue, recovery_rate
      FROM personalisation.journey_report ORDER BY arm, step NULLS FIRST$$,
  $$VALUES ('holdout', NULL::int, 2::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 5::numeric, 0.5000),
           ('holdout', 1, 2, 0, 2, 0, 0, 0, 0.0000),
           ('holdout', 2, 2, 0, 2, 0, 1, 5, 0.5000),
           ('holdout', 3, 2, 0, 0, 0, 0, 0, 0.0000),
           ('holdout', 4, 2, 0, 0, 0, 0, 0, 0.0000),
           ('treatment', NULL, 3, 6, 0, 1, 1, 60, 0.3333),
           ('treatment', 1, 3, 3, 0, 1, 0, 0, 0.0000),
           ('treatment', 2, 3, 3, 0, 0, 1, 60, 0.3333),
           ('treatment', 3, 3, 0, 0, 0, 0, 0, 0.0000),
           ('treatment', 4, 3, 0, 0, 0, 0, 0, 0.0000)$$,
  'the report gives carts abandoned, messages, recoveries, revenue and rate per arm and step');

-------------------------------------------------------------------------------
-- Bad input is refused.
SELECT throws_ok($$SELECT personalisation.run_due(NULL)$$, '22004', 'now must not be null', 'run_due refuses a NULL time');
SELECT throws_ok($$SELECT personalisation.run_due('infinity')$$, '22008', 'now must be a finite timestamp', 'run_due refuses infinity');
SELECT throws_ok($$SELECT personalisation.track_session_end('')$$, '22023', 'session_id must not be empty', 'track_session_end refuses an empty session');
SELECT throws_ok($$INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template, blocks)
                   VALUES ('abandoned_cart', 9, 'x', '1 hour', 'email', 'x', '{incentive}')$$,
  '23514', NULL, 'an incentive step must say its kind and value');

-------------------------------------------------------------------------------
-- pg_cron registration: a clear error without pg_cron, naming the
-- schedule_in_database calls for a pg_cron living in another database.
DO $$ BEGIN IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN DROP EXTENSION pg_cron; END IF; END $$;
SELECT throws_like($$SELECT * FROM personalisation.schedule_jobs()$$,
  'pg_cron is not installed in database%', 'schedule_jobs refuses to run without pg_cron');
CREATE FUNCTION pg_temp.schedule_error_detail() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    PERFORM personalisation.schedule_jobs();
    RETURN NULL;
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN detail;
END
$$;
SELECT ok(pg_temp.schedule_error_detail() LIKE '%cron.schedule_in_database(''personalisation:run-due'', ''* * * * *'', ''SELECT personalisation.run_due()'', %',
  'the error says how to schedule run_due from the database pg_cron lives in');
CREATE EXTENSION pg_cron;
SELECT is((SELECT schedule FROM personalisation.schedule_jobs() WHERE job_name = 'personalisation:run-due'), '* * * * *',
  'schedule_jobs registers run_due every minute');
SELECT personalisation.schedule_jobs();
SELECT is((SELECT count(*) FROM cron.job WHERE jobname = 'personalisation:run-due'), 1::bigint,
  'registering twice keeps one job');

SELECT * FROM finish();
ROLLBACK;
