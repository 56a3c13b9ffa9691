-- What a delivery worker may do, tried through a login role that is a member
-- of personalisation_sender: it runs on the server's clock (an explicit now
-- more than personalisation.max_clock_skew away is refused, for every
-- function, while the owner keeps its explicit clock), it settles only the
-- claims it holds, and the error text it reports is kept to a bounded length.
-- Messages come from this file's carts (js-*), abandoned three hours before
-- the transaction's time so that they are due on the server's clock.
BEGIN;
SELECT plan(40);

SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL personalisation.max_attempts = 5;
SET LOCAL personalisation.max_clock_skew = '5min';
SET LOCAL timezone = 'UTC';

CREATE ROLE js_sender_app LOGIN IN ROLE personalisation_sender;

UPDATE personalisation.journey_steps SET enabled = false WHERE journey = 'abandoned_cart' AND step > 2;
INSERT INTO personalisation.categories VALUES ('js-cat', NULL, 'Sender test');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('js-lamp', 'js-cat', 'Lamp', 40);

-- A known, consenting shopper leaves a lamp in the cart three hours ago;
-- run_due (the owner's explicit clock) writes the push and the first email.
CREATE FUNCTION pg_temp.abandon(session text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := now() - interval '3 hours';
BEGIN
    PERFORM personalisation.track_cart_add(session, 'js-lamp', 1, at);
    PERFORM personalisation.set_consent(session, 'push', true, at);
    UPDATE personalisation.profiles p
       SET customer_id = 'cust-' || session, email = session || '@example.test', email_consent = true
      FROM personalisation.sessions s WHERE s.session_id = session AND s.profile_id = p.profile_id;
    PERFORM personalisation.run_due(at + interval '30 minutes');
    PERFORM personalisation.run_due(at + interval '60 minutes');
END
$$;
SELECT pg_temp.abandon('js-a');

-- The file's messages (step 1, the push; step 2, the email) and their state.
CREATE TEMP TABLE js_messages AS
SELECT o.step, o.message_id FROM personalisation.outbox o WHERE o.session_id = 'js-a';
GRANT SELECT ON js_messages TO PUBLIC;
CREATE FUNCTION pg_temp.msg(step_no int) RETURNS bigint LANGUAGE sql AS $$
    SELECT message_id FROM js_messages WHERE step = step_no
$$;
CREATE FUNCTION pg_temp.state(id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT status || '/' || attempts || coalesce('/' || claimed_by, '') || coalesce('/' || last_error, '')
      FROM personalisation.outbox WHERE message_id = id
$$;
SELECT is((SELECT count(*) FROM js_messages), 2::bigint, 'the cart has a push and an email waiting');

-------------------------------------------------------------------------------
-- The clock: each function refuses a sender's forged now.
SET ROLE js_sender_app;
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('js-w1', 10, '5 minutes', now() + interval '2000 years')$$,
  '42501', NULL, 'a sender cannot claim as of the year 4026, taking messages other consumers hold');
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('js-w1', 10, '5 minutes', now() - interval '1 hour')$$,
  '42501', NULL, 'nor as of an hour ago');
SELECT throws_like($$SELECT * FROM personalisation.claim_messages('js-w1', 10, '5 minutes', now() + interval '6 minutes')$$,
  'now % is more than personalisation.max_clock_skew away from the server''s clock',
  'nor 6 minutes ahead, with max_clock_skew at 5 minutes');
-- the lease: at most personalisation.max_lease (1 hour by default)
SELECT throws_like($$SELECT * FROM personalisation.claim_messages('js-w1', 10, '17520000 hours')$$,
  'lease % is longer than personalisation.max_lease',
  'a sender cannot hold messages for 2000 years with a long lease');
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('js-w1', 10, '61 minutes')$$,
  '42501', NULL, 'nor for a minute longer than max_lease');
SELECT is((SELECT count(*) FILTER (WHERE c.session_id = 'js-a')
             FROM personalisation.claim_messages('js-w1', 10000, '5 minutes', now() + interval '4 minutes') c), 2::bigint,
  'a now within max_clock_skew is the sender''s to pass');
RESET ROLE;
SELECT is(pg_temp.state(pg_temp.msg(1)) || ' ' || pg_temp.state(pg_temp.msg(2)), 'claimed/1/js-w1 claimed/1/js-w1',
  'the refused claims took nothing, the accepted one both messages');
SELECT is((SELECT lease_until FROM personalisation.outbox WHERE message_id = pg_temp.msg(1)),
  now() + interval '9 minutes', 'leased from the now it passed');
SET ROLE js_sender_app;
SELECT throws_ok(format($$SELECT personalisation.ack_message(%s, '2016-01-01 00:00+00', 'js-w1')$$, pg_temp.msg(1)),
  '42501', NULL, 'a sender cannot record a delivery in 2016');
SELECT throws_ok(format($$SELECT personalisation.ack_messages(ARRAY[%s], '4026-01-01 00:00+00', 'js-w1')$$, pg_temp.msg(1)),
  '42501', NULL, 'nor a batch of deliveries in 4026');
SELECT throws_ok(format($$SELECT personalisation.fail_message(%s, 'smtp down', '2126-01-01 00:00+00', 'js-w1')$$, pg_temp.msg(1)),
  '42501', NULL, 'nor push a retry to 2126');

-------------------------------------------------------------------------------
-- The claimant: another consumer's lease is refused, and so is an
-- acknowledgement or failure that does not say whose it is.
SELECT throws_ok(format($$SELECT personalisation.ack_message(%s, consumer => 'js-w2')$$, pg_temp.msg(1)),
  '55000', format('message %s is claimed by consumer "js-w1", not by consumer "js-w2"', pg_temp.msg(1)),
  'a consumer cannot acknowledge a message another consumer holds');
SELECT throws_ok(format($$SELECT personalisation.ack_messages(ARRAY[%s, %s], consumer => 'js-w2')$$, pg_temp.msg(1), pg_temp.msg(2)),
  '55000', NULL, 'nor a batch of them');
SELECT throws_ok(format($$SELECT personalisation.fail_message(%s, 'smtp down', consumer => 'js-w2')$$, pg_temp.msg(2)),
  '55000', format('message %s is claimed by consumer "js-w1", not by consumer "js-w2"', pg_temp.msg(2)),
  'nor fail one');
SELECT throws_ok(format($$SELECT personalisation.ack_message(%s)$$, pg_temp.msg(1)),
  '42501', 'ack_message needs the consumer that claimed the message', 'a sender must name its consumer to acknowledge');
SELECT throws_ok(format($$SELECT personalisation.ack_messages(ARRAY[%s])$$, pg_temp.msg(1)),
  '42501', 'ack_messages needs the consumer that claimed the message', 'to acknowledge a batch');
SELECT throws_ok(format($$SELECT personalisation.fail_message(%s, 'smtp down')$$, pg_temp.msg(1)),
  '42501', 'fail_message needs the consumer that claimed the message', 'and to report a failure');
RESET ROLE;
SELECT is(pg_temp.state(pg_temp.msg(1)) || ' ' || pg_temp.state(pg_temp.msg(2)), 'claimed/1/js-w1 claimed/1/js-w1',
  'the refused calls changed nothing');
SET ROLE js_sender_app;
SELECT is(personalisation.ack_message(pg_temp.msg(1), consumer => 'js-w1'), true, 'the consumer holding the claim acknowledges it');
SELECT is(personalisation.ack_message(pg_temp.msg(1), now() + interval '1 minute', 'js-w1'), false,
  'and retries its acknowledgement, with a now within max_clock_skew');
RESET ROLE;

-- The owner keeps its explicit clock: it claims the email again once its
-- lease has lapsed, as another consumer; the lease that lapsed is gone.
SELECT is((SELECT array_agg(c.message_id) FILTER (WHERE c.session_id = 'js-a')
             FROM personalisation.claim_messages('js-w2', 10000, '1 hour', now() + interval '10 minutes') c),
  ARRAY[pg_temp.msg(2)], 'the owner claims as of an explicit time');
SET ROLE js_sender_app;
SELECT throws_ok(format($$SELECT personalisation.ack_message(%s, consumer => 'js-w1')$$, pg_temp.msg(2)),
  '55000', format('message %s is claimed by consumer "js-w2", not by consumer "js-w1"', pg_temp.msg(2)),
  'a consumer whose lease lapsed cannot acknowledge the message another consumer now holds');

-------------------------------------------------------------------------------
-- The error text: kept up to 4096 bytes, cut on a character boundary with a
-- marker giving the length reported.
SELECT is(personalisation.fail_message(pg_temp.msg(2), repeat('a', 4000) || repeat('€', 1000), consumer => 'js-w2'), 'pending',
  'the consumer holding the claim reports a failure with a 7000-byte error');
RESET ROLE;
SELECT is((SELECT last_error FROM personalisation.outbox WHERE message_id = pg_temp.msg(2)),
  repeat('a', 4000) || repeat('€', 23) || ' [cut: 7000 bytes in all]',
  'the error is cut on a character boundary, with the length reported');
SELECT cmp_ok((SELECT octet_length(last_error) FROM personalisation.outbox WHERE message_id = pg_temp.msg(2)), '<=', 4096,
  'and kept to 4096 bytes');

-- the owner claims it again (explicit time, past the backoff) and fails it
-- without naming a consumer, with errors at the bound and far beyond it
SELECT is((SELECT count(*) FILTER (WHERE c.session_id = 'js-a')
             FROM personalisation.claim_messages('js-w3', 10000, '1 hour', now() + interval '1 day') c), 1::bigint,
  'the owner claims the retry');
SELECT is(personalisation.fail_message(pg_temp.msg(2), repeat('b', 4096), now() + interval '1 day'), 'pending',
  'the owner reports a failure without naming the consumer, as of an explicit time');
SELECT is((SELECT last_error FROM personalisation.outbox WHERE message_id = pg_temp.msg(2)), repeat('b', 4096),
  'an error of exactly 4096 bytes is kept whole');
SELECT is((SELECT count(*) FILTER (WHERE c.session_id = 'js-a')
             FROM personalisation.claim_messages('js-w3', 10000, '1 hour', now() + interval '2 days') c), 1::bigint,
  'the owner claims it once more');
SET ROLE js_sender_app;
SELECT throws_ok(format($$SELECT personalisation.fail_message(%s, '', consumer => 'js-w3')$$, pg_temp.msg(2)),
  '22004', 'error must not be empty', 'an empty error is refused');
RESET ROLE;
SELECT is(personalisation.fail_message(pg_temp.msg(2), repeat('ü', 10000000), now() + interval '2 days', 'js-w3'), 'pending',
  'a 20 MB error is accepted');
SELECT is((SELECT octet_length(last_error) || ' ' || right(last_error, 30) FROM personalisation.outbox
            WHERE message_id = pg_temp.msg(2)),
  '4095 ü [cut: 20000000 bytes in all]', 'and cut to its first 4 kB');
SELECT is((SELECT count(*) FILTER (WHERE c.session_id = 'js-a' AND c.last_error LIKE '%[cut: 20000000 bytes in all]')
             FROM personalisation.claim_messages('js-w4', 10000, '1 hour', now() + interval '3 days') c), 1::bigint,
  'the next claim hands the message out with the cut error');
SELECT is((SELECT octet_length(e.value ->> 'last_error') FROM jsonb_array_elements(
             personalisation.export_customer('cust-js-a') -> 'tables' -> 'outbox') AS e(value)
           WHERE (e.value ->> 'message_id')::bigint = pg_temp.msg(2)), 4095,
  'and export_customer shows the customer''s messages with it');

-- a database still at 0.1.0 declares the functions without consumer: the
-- same C functions then check no claimant
CREATE FUNCTION pg_temp.ack_message_010(message_id bigint, now timestamptz DEFAULT now())
RETURNS boolean LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS '$libdir/personalisation', 'ack_message';
CREATE FUNCTION pg_temp.fail_message_010(message_id bigint, error text, now timestamptz DEFAULT now())
RETURNS text LANGUAGE c AS '$libdir/personalisation', 'fail_message';
SELECT is(pg_temp.fail_message_010(pg_temp.msg(2), 'smtp 451', now() + interval '3 days'), 'dead',
  'fail_message as 0.1.0 declares it still works (the fifth attempt failed: dead-lettered)');
GRANT EXECUTE ON FUNCTION pg_temp.ack_message_010(bigint, timestamptz) TO js_sender_app;
SET ROLE js_sender_app;
SELECT throws_ok(format($$SELECT pg_temp.ack_message_010(%s, '2016-01-01 00:00+00')$$, pg_temp.msg(1)),
  '42501', NULL, 'and ack_message as 0.1.0 declares it refuses a sender''s forged clock too');
SELECT is(pg_temp.ack_message_010(pg_temp.msg(1)), false, 'while a sender''s call on the server''s clock works');
RESET ROLE;

-------------------------------------------------------------------------------
-- A claim passes over rows other transactions hold, never over the rows its
-- own transaction holds: a message claimed, locked and changed in a
-- savepoint that was rolled back is claimed again once its lease lapses.
SELECT pg_temp.abandon('js-b');
SELECT is((SELECT count(*) FILTER (WHERE c.session_id = 'js-b')
             FROM personalisation.claim_messages('js-w5', 10000, '1 minute', now() + interval '4 days') c), 2::bigint,
  'the owner claims the second cart''s messages');
SELECT count(*) FROM (SELECT FROM personalisation.outbox WHERE session_id = 'js-b' FOR UPDATE) locked;
SAVEPOINT refused_batch;
UPDATE personalisation.outbox SET attempts = attempts WHERE session_id = 'js-b';
ROLLBACK TO SAVEPOINT refused_batch;
SELECT is((SELECT count(*) FILTER (WHERE c.session_id = 'js-b')
             FROM personalisation.claim_messages('js-w6', 10000, '1 minute', now() + interval '4 days 2 minutes') c), 2::bigint,
  'after the savepoint rolled back, the lapsed claims are taken again in the same transaction');

SELECT * FROM finish();
ROLLBACK;
