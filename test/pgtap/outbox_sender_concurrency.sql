-- A lapsed lease raced on two real connections (dblink, test/race.sql): the
-- consumer that held the claims acknowledges them one by one while another
-- consumer claims them again, at the same instant.  Each message must end
-- either delivered by the first consumer or handed to the second, never
-- both: an acknowledgement checks the claimant on the row's newest version.
-- The data is committed, so that the other connections see it, and removed
-- at the end.
SET personalisation.event_retention = '36500d';
SET timezone = 'UTC';
SELECT plan(5);

INSERT INTO personalisation.categories VALUES ('oc-cat', NULL, 'Sender concurrency test');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('oc-lamp', 'oc-cat', 'Lamp', 40);
SELECT count(personalisation.track_cart_add('oc-' || i, 'oc-lamp', 1, '2025-10-08 10:00+00')) FROM generate_series(1, 30) i;
SELECT count(personalisation.set_consent('oc-' || i, 'push', true, '2025-10-08 10:00+00')) FROM generate_series(1, 30) i;
UPDATE personalisation.profiles p SET customer_id = 'cust-' || s.session_id
  FROM personalisation.sessions s WHERE s.session_id ~ '^oc-[0-9]+$' AND s.profile_id = p.profile_id;
SET personalisation.journey_holdout_percent = 0;
SET personalisation.frequency_cap = 0;
SET personalisation.quiet_hours = '';
SELECT personalisation.run_due('2025-10-08 10:30+00');

-- The pushes, claimed by oc-a under a lease that lapses at 10:36.
CREATE TEMP TABLE oc_claimed AS
SELECT c.message_id FROM personalisation.claim_messages('oc-a', 1000, '5 minutes', '2025-10-08 10:31+00') c
 WHERE c.session_id ~ '^oc-[0-9]+$';
SELECT is((SELECT count(*) FROM oc_claimed), 30::bigint, 'the first consumer holds a push for each cart');

\ir ../race.sql
SELECT pg_temp.race_connect();
-- on race1: acknowledges each message as oc-a, returning those it could
SELECT dblink_exec('race1', $f$
CREATE FUNCTION pg_temp.ack_each(ids bigint[]) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    acked bigint[] := '{}';
    id bigint;
BEGIN
    FOREACH id IN ARRAY ids LOOP
        BEGIN
            PERFORM personalisation.ack_message(id, '2025-10-08 10:37+00', 'oc-a');
            acked := acked || id;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            NULL;
        END;
    END LOOP;
    RETURN acked;
END
$$ $f$);

CREATE TEMP TABLE oc_answers AS
SELECT pg_temp.race(ARRAY[
    format('pg_temp.ack_each(%L)', (SELECT array_agg(message_id ORDER BY message_id) FROM oc_claimed)),
    $$(SELECT array_agg(message_id) FROM personalisation.claim_messages('oc-b', 1000, '5 minutes', '2025-10-08 10:37+00'))$$
]) AS answers;
CREATE TEMP TABLE oc_acked AS SELECT unnest(answers[1]::bigint[]) AS message_id FROM oc_answers;
CREATE TEMP TABLE oc_handed AS
SELECT h.message_id FROM oc_answers, unnest(coalesce(answers[2], '{}')::bigint[]) AS h(message_id)
 WHERE h.message_id IN (SELECT message_id FROM oc_claimed);
SELECT pg_temp.race_disconnect();
SELECT diag(format('%s acknowledged by oc-a, %s handed to oc-b', (SELECT count(*) FROM oc_acked), (SELECT count(*) FROM oc_handed)));

SELECT is((SELECT count(*) FROM oc_acked JOIN oc_handed USING (message_id)), 0::bigint,
  'no message is both acknowledged by the consumer whose lease lapsed and handed to the one that claimed it again');
SELECT is((SELECT count(*) FROM oc_acked) + (SELECT count(*) FROM oc_handed), 30::bigint,
  'every message went one way or the other');
SELECT is((SELECT count(*) FROM personalisation.outbox o JOIN oc_claimed USING (message_id)
            WHERE (o.status = 'delivered' AND o.claimed_by = 'oc-a' AND o.message_id IN (SELECT message_id FROM oc_acked))
               OR (o.status = 'claimed' AND o.claimed_by = 'oc-b' AND o.message_id IN (SELECT message_id FROM oc_handed))),
  30::bigint, 'and the outbox says so: delivered by oc-a, or claimed by oc-b');

-- Clean up everything this file committed.
SELECT count(personalisation.forget_customer('cust-oc-' || i)) FROM generate_series(1, 30) i;
DELETE FROM personalisation.products WHERE product_id = 'oc-lamp';
DELETE FROM personalisation.categories WHERE category_id = 'oc-cat';
SELECT is((SELECT count(*) FROM personalisation.sessions WHERE session_id ~ '^oc-')
          + (SELECT count(*) FROM personalisation.outbox WHERE session_id ~ '^oc-'), 0::bigint,
  'the test leaves nothing behind');

SELECT * FROM finish();
