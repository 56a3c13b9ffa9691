-- identify_on_login(): a trigger on the shop's own login table identifies
-- every login row as identify() would, or refuses the row.
BEGIN;
SELECT plan(14);
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL timezone = 'UTC';

CREATE SCHEMA shop;
CREATE TABLE shop.logins (
    login_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id   text,
    customer_id  bigint NOT NULL,
    email        text,
    logged_in_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER logins_identify AFTER INSERT ON shop.logins
    FOR EACH ROW EXECUTE FUNCTION
    personalisation.identify_on_login('session_id', 'customer_id', 'email', 'logged_in_at');

SELECT personalisation.track_page_view('idt-desk', NULL, NULL, '2026-05-01 09:00+00');
SELECT profile_id AS desk FROM personalisation.sessions WHERE session_id = 'idt-desk' \gset
INSERT INTO shop.logins (session_id, customer_id, email, logged_in_at)
VALUES ('idt-desk', 4711, 'ada@example.com', '2026-05-01 09:01+00');
SELECT results_eq(
  $$SELECT customer_id, email FROM personalisation.profiles WHERE profile_id = $$ || :desk,
  $$VALUES ('4711'::text, 'ada@example.com'::text)$$,
  'a first login row turns the session''s profile into the customer''s (a bigint id in its text form)');

SELECT personalisation.track_page_view('idt-phone', NULL, NULL, '2026-05-01 10:00+00');
SELECT profile_id AS phone FROM personalisation.sessions WHERE session_id = 'idt-phone' \gset
INSERT INTO shop.logins (session_id, customer_id, logged_in_at) VALUES ('idt-phone', 4711, '2026-05-01 10:05+00');
SELECT is((SELECT profile_id FROM personalisation.sessions WHERE session_id = 'idt-phone'), :desk::bigint,
          'a login row from another device merges it into the customer''s profile');
SELECT results_eq(
  $$SELECT from_profile_id, reason, merged_at FROM personalisation.merges WHERE profile_id = $$ || :desk,
  $$VALUES ($$ || :phone || $$::bigint, 'identify_on_login on shop.logins'::text, '2026-05-01 10:05+00'::timestamptz)$$,
  'the ledger names the login table as the reason and the row''s login time as the time');
SELECT is((SELECT email FROM personalisation.profiles WHERE profile_id = :desk), 'ada@example.com',
          'a login row without an email keeps the known one');

INSERT INTO shop.logins (session_id, customer_id, logged_in_at) VALUES ('idt-phone', 4711, '2026-05-01 10:05+00');
SELECT is((SELECT count(*) FROM personalisation.merges WHERE profile_id = :desk), 1::bigint,
          'a repeated login row changes nothing');

-- A refused login row is not written, and nothing else is.
SELECT throws_ok($$INSERT INTO shop.logins (session_id, customer_id) VALUES ('idt-desk', 0)$$, '22023',
                 'customer_id "0" is a blocked identifier', 'a login row with a placeholder customer is refused');
SELECT throws_ok($$INSERT INTO shop.logins (session_id, customer_id) VALUES (NULL, 4711)$$, '22004',
                 'session_id must not be null', 'a login row without a session is refused');
SELECT is((SELECT count(*) FROM shop.logins), 3::bigint, 'refused login rows are not written');

-- A trigger with two arguments uses now() and no email; UPDATEs identify too.
CREATE TABLE shop.app_logins (sid varchar(64), uid text);
CREATE TRIGGER app_logins_identify BEFORE INSERT OR UPDATE ON shop.app_logins
    FOR EACH ROW EXECUTE FUNCTION personalisation.identify_on_login('sid', 'uid');
INSERT INTO shop.app_logins VALUES ('idt-app', 'grace');
SELECT results_eq(
  $$SELECT p.customer_id, p.created_at = now() FROM personalisation.profiles p
      JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = 'idt-app'$$,
  $$VALUES ('grace'::text, true)$$,
  'a two-argument trigger identifies the row as of now()');
SELECT is((SELECT count(*) FROM shop.app_logins), 1::bigint, 'a BEFORE trigger keeps the row');
UPDATE shop.app_logins SET uid = 'hopper';
SELECT is((SELECT p.customer_id FROM personalisation.profiles p
             JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = 'idt-app'), 'hopper',
          'an updated login row identifies the new customer');

-- Misconfigured triggers say what is wrong.
CREATE TABLE shop.bad_logins (session_id text, customer_id text);
CREATE TRIGGER bad_logins_identify AFTER INSERT ON shop.bad_logins
    FOR EACH ROW EXECUTE FUNCTION personalisation.identify_on_login('session_id', 'customer');
SELECT throws_ok($$INSERT INTO shop.bad_logins VALUES ('idt-bad', 'x')$$, '42703',
                 'column "customer" does not exist in table "bad_logins"', 'an unknown column is refused');
DROP TRIGGER bad_logins_identify ON shop.bad_logins;
CREATE TRIGGER bad_logins_identify AFTER INSERT ON shop.bad_logins
    FOR EACH ROW EXECUTE FUNCTION personalisation.identify_on_login('session_id');
SELECT throws_ok($$INSERT INTO shop.bad_logins VALUES ('idt-bad', 'x')$$, '22023',
                 'identify_on_login() takes 2 to 4 trigger arguments, not 1', 'a missing argument is refused');
DROP TRIGGER bad_logins_identify ON shop.bad_logins;
CREATE TRIGGER bad_logins_identify AFTER INSERT ON shop.bad_logins
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation.identify_on_login('session_id', 'customer_id');
SELECT throws_ok($$INSERT INTO shop.bad_logins VALUES ('idt-bad', 'x')$$, '39P01',
                 'identify_on_login() must be fired for each row inserted or updated',
                 'a statement-level trigger is refused');

SELECT * FROM finish();
ROLLBACK;
