-- Roles and privileges: each of the three roles, used through a login role
-- that is a member of it (as an administrator sets it up), can do its part
-- and is refused everything else; the catalog holds exactly the grants the
-- access map names, nothing for PUBLIC, and every function a role may call
-- runs as the owner with a pinned search_path.
BEGIN;
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SELECT plan(82);

CREATE ROLE sec_shop_app LOGIN IN ROLE personalisation_shop;
CREATE ROLE sec_analyst_app LOGIN IN ROLE personalisation_analyst;
CREATE ROLE sec_sender_app LOGIN IN ROLE personalisation_sender;
CREATE ROLE sec_stranger LOGIN;

-- A shop with one customer who abandoned a cart and has a message waiting.
INSERT INTO personalisation.categories VALUES ('sec-cat', NULL, 'Security');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('sec-p1', 'sec-cat', 'Lamp', 40);
SELECT personalisation.set_consent('sec-sess-Zq1', 'push', true, '2025-03-01 10:00+00');
SELECT personalisation.track_cart_add('sec-sess-Zq1', 'sec-p1', 1, '2025-03-01 10:00+00');
SELECT personalisation.identify('sec-sess-Zq1', 'sec-cust-Zq1', 'sec-zq1@example.test', '2025-03-01 10:01+00');
SELECT personalisation.track_purchase('sec-sess-Zq1', 'sec-order-Zq1',
       '[{"product_id": "sec-p1", "quantity": 2, "unit_price": 40}]', '2025-03-01 09:00+00');
SELECT personalisation.track_cart_add('sec-sess-Zq1', 'sec-p1', 1, '2025-03-01 10:05+00');
SELECT personalisation.run_due('2025-03-01 11:00+00');

-- The catalog: every function and relation of the schema, and who may use it.
CREATE TEMP TABLE sec_objects AS
SELECT 'function' AS kind, p.proname::text AS name, p.oid, p.prosecdef, p.proconfig, p.proacl AS acl
  FROM pg_proc p WHERE p.pronamespace = 'personalisation'::regnamespace
UNION ALL
SELECT 'relation', c.relname::text, c.oid, NULL, NULL, c.relacl
  FROM pg_class c WHERE c.relnamespace = 'personalisation'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S');
CREATE TEMP TABLE sec_roles (role_name text);
INSERT INTO sec_roles VALUES ('personalisation_shop'), ('personalisation_analyst'), ('personalisation_sender');
GRANT SELECT ON sec_objects, sec_roles TO PUBLIC;

SELECT is((SELECT count(*) FROM sec_objects o, aclexplode(coalesce(o.acl,
              CASE o.kind WHEN 'function' THEN acldefault('f', 10) ELSE acldefault('r', 10) END)) a
            WHERE a.grantee = 0), 0::bigint,
          'no function, table, view or sequence of the schema grants anything to PUBLIC');
SELECT is((SELECT array_agg(o.name ORDER BY o.name) FROM sec_objects o, sec_roles r
            WHERE CASE o.kind WHEN 'function' THEN has_function_privilege(r.role_name, o.oid, 'EXECUTE')
                              ELSE has_table_privilege(r.role_name, o.oid, 'SELECT') END
                  <> EXISTS (SELECT FROM personalisation.access_map m
                              WHERE m.object_name = o.name AND m.role_name = r.role_name)),
          NULL, 'each role may execute exactly the functions and read exactly the relations the access map gives it');
SELECT is((SELECT array_agg(DISTINCT o.name || ' to ' || a.grantee::regrole::text ORDER BY o.name || ' to ' || a.grantee::regrole::text)
             FROM sec_objects o, aclexplode(o.acl) a
            WHERE o.kind = 'function' AND a.privilege_type = 'EXECUTE'
              AND a.grantee <> (SELECT p.proowner FROM pg_proc p WHERE p.oid = o.oid)
              AND NOT EXISTS (SELECT FROM personalisation.access_map m
                               WHERE m.object_name = o.name AND m.role_name = a.grantee::regrole::text)),
          NULL, 'no function of the schema, however it got there, grants EXECUTE to a role the access map does not name for it');
SELECT is((SELECT array_agg(o.name ORDER BY o.name) FROM sec_objects o
            WHERE o.name IN ('affinity_fold', 'journey_run_checks', 'journey_run_purchases', '_complement_product_orders')
              AND (EXISTS (SELECT FROM personalisation.access_map m WHERE m.object_name = o.name AND m.role_name <> 'owner_only')
                   OR EXISTS (SELECT FROM sec_roles r
                               WHERE CASE o.kind WHEN 'function' THEN has_function_privilege(r.role_name, o.oid, 'EXECUTE')
                                                 ELSE has_table_privilege(r.role_name, o.oid, 'SELECT') END))),
          NULL, 'the internal helpers that keep a name without underscore, and _complement_product_orders, are granted to no role');
SELECT is((SELECT count(*) FROM pg_default_acl d
            WHERE d.defaclnamespace = 'personalisation'::regnamespace
               OR d.defaclrole = (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'personalisation')),
          0::bigint, 'the extension sets no default privileges: apply_access_map covers the functions each script adds');
SELECT is((SELECT array_agg(o.name ORDER BY o.name) FROM sec_objects o
            WHERE o.kind = 'relation' AND EXISTS (
                  SELECT FROM sec_roles r
                   WHERE has_table_privilege(r.role_name, o.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))),
          ARRAY['categories', 'products'], 'only the catalogue can be written by a role, and only by the shop');
SELECT is((SELECT array_agg(DISTINCT o.name ORDER BY o.name) FROM sec_objects o
            JOIN personalisation.access_map m ON m.object_name = o.name
           WHERE o.kind = 'function' AND o.prosecdef <> (m.runs_as = 'owner')),
          NULL, 'the functions the map runs as the owner are SECURITY DEFINER, and no other');
SELECT is((SELECT array_agg(o.name ORDER BY o.name) FROM sec_objects o
            WHERE o.kind = 'function' AND o.prosecdef
              AND o.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']),
          NULL, 'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp');
SELECT is((SELECT array_agg(rolname::text ORDER BY rolname) FROM pg_roles
            WHERE rolname IN (SELECT role_name FROM sec_roles) AND NOT rolcanlogin),
          ARRAY['personalisation_analyst', 'personalisation_sender', 'personalisation_shop'],
          'the three roles exist and cannot log in');

-- The shop's application.
SET ROLE sec_shop_app;
SELECT lives_ok($$SELECT personalisation.track_page_view('sec-sess-Zq2', 'sec-cat', NULL, '2025-03-02 10:00+00')$$,
                'the shop tracks a page view');
SELECT lives_ok($$SELECT personalisation.track_cart_add('sec-sess-Zq2', 'sec-p1', 2, '2025-03-02 10:01+00')$$,
                'adds to a cart');
SELECT lives_ok($$SELECT personalisation.track_cart_remove('sec-sess-Zq2', 'sec-p1', 1, '2025-03-02 10:02+00')$$,
                'removes from a cart');
SELECT lives_ok($$SELECT personalisation.set_consent('sec-sess-Zq2', 'email', true, '2025-03-02 10:03+00')$$,
                'records consent');
SELECT lives_ok($$SELECT personalisation.identify('sec-sess-Zq2', 'sec-cust-Zq2', 'sec-zq2@example.test', '2025-03-02 10:04+00')$$,
                'identifies a login');
SELECT lives_ok($$SELECT personalisation.track_purchase('sec-sess-Zq2', 'sec-order-Zq2',
                    '[{"product_id": "sec-p1", "quantity": 1, "unit_price": 40}]', '2025-03-02 10:05+00')$$,
                'records a purchase');
SELECT lives_ok($$SELECT personalisation.track_session_end('sec-sess-Zq2', '2025-03-02 10:06+00')$$,
                'ends a session');
SELECT lives_ok($$INSERT INTO personalisation.categories VALUES ('sec-cat-2', 'sec-cat', 'Shades')$$,
                'inserts a category');
SELECT lives_ok($$INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('sec-p2', 'sec-cat-2', 'Shade', 9)$$,
                'inserts a product');
SELECT lives_ok($$UPDATE personalisation.products SET price = 10 WHERE product_id = 'sec-p2'$$, 'updates a product');
SELECT lives_ok($$DELETE FROM personalisation.products WHERE product_id = 'sec-p2'$$, 'deletes a product');
SELECT is((SELECT count(*) FROM personalisation.products WHERE product_id = 'sec-p1'), 1::bigint, 'and reads the catalogue');
SELECT throws_ok($$SELECT count(*) FROM personalisation.events$$, '42501', NULL, 'the shop cannot read events');
SELECT throws_ok($$SELECT count(*) FROM personalisation.profiles$$, '42501', NULL, 'nor profiles');
SELECT throws_ok($$SELECT count(*) FROM personalisation.sessions$$, '42501', NULL, 'nor sessions');
SELECT throws_ok($$SELECT count(*) FROM personalisation.outbox$$, '42501', NULL, 'nor the outbox');
SELECT throws_ok($$SELECT count(*) FROM personalisation.orders$$, '42501', NULL, 'nor orders');
SELECT throws_ok($$SELECT count(*) FROM personalisation.pseudonym_key$$, '42501', NULL, 'nor the pseudonym key');
SELECT throws_ok($$INSERT INTO personalisation.events (kind, occurred_at, profile_id, session_id) VALUES ('page_view', now(), 1, 'x')$$,
                 '42501', NULL, 'nor write events directly');
SELECT throws_ok($$UPDATE personalisation.cart_lines SET quantity = 99$$, '42501', NULL, 'nor change carts directly');
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('shop')$$, '42501', NULL, 'the shop cannot claim messages');
SELECT throws_ok($$SELECT personalisation.ack_message(1)$$, '42501', NULL, 'nor acknowledge them');
SELECT throws_ok($$SELECT personalisation.run_due()$$, '42501', NULL, 'nor run the journeys');
SELECT throws_ok($$SELECT personalisation.forget_customer('sec-cust-Zq1')$$, '42501', NULL, 'nor forget a customer');
SELECT throws_ok($$SELECT personalisation.export_customer('sec-cust-Zq1')$$, '42501', NULL, 'nor export one');
SELECT throws_ok($$SELECT personalisation.unmerge(1)$$, '42501', NULL, 'nor undo a merge');
SELECT throws_ok($$SELECT * FROM personalisation.maintain_partitions()$$, '42501', NULL, 'nor maintain partitions');
SELECT throws_ok($$SELECT count(*) FROM personalisation.journey_report$$, '42501', NULL, 'nor read the reports');
SELECT throws_ok($$SET personalisation.frequency_cap = 100$$, '42501', NULL, 'nor change the settings');
RESET ROLE;

-- Analysts.
SET ROLE sec_analyst_app;
SELECT ok((SELECT count(*) > 0 FROM personalisation.journey_report), 'the analyst reads journey_report');
SELECT ok((SELECT count(*) > 0 FROM personalisation.events_report), 'events_report');
SELECT ok((SELECT count(*) > 0 FROM personalisation.orders_report), 'orders_report');
SELECT ok((SELECT count(*) > 0 FROM personalisation.order_lines_report), 'order_lines_report');
SELECT ok((SELECT count(*) > 0 FROM personalisation.people_report), 'and people_report');
SELECT throws_ok($$SELECT count(*) FROM personalisation.profiles$$, '42501', NULL, 'the analyst cannot read profiles');
SELECT throws_ok($$SELECT email FROM personalisation.profiles$$, '42501', NULL, 'nor any personal column');
SELECT throws_ok($$SELECT count(*) FROM personalisation.events$$, '42501', NULL, 'nor events');
SELECT throws_ok($$SELECT count(*) FROM personalisation.sessions$$, '42501', NULL, 'nor sessions');
SELECT throws_ok($$SELECT count(*) FROM personalisation.outbox$$, '42501', NULL, 'nor the outbox');
SELECT throws_ok($$SELECT count(*) FROM personalisation.pseudonym_key$$, '42501', NULL, 'nor the pseudonym key');
SELECT throws_ok($$SELECT count(*) FROM personalisation.journey_run_checks$$, '42501', NULL, 'nor internal views');
SELECT throws_ok($$SELECT personalisation.track_page_view('sec-x')$$, '42501', NULL, 'the analyst cannot track');
SELECT throws_ok($$SELECT personalisation.identify('sec-x', 'sec-y')$$, '42501', NULL, 'nor identify');
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('analyst')$$, '42501', NULL, 'nor claim messages');
SELECT throws_ok($$SELECT personalisation.export_customer('sec-cust-Zq1')$$, '42501', NULL, 'nor export a customer');
SELECT throws_ok($$INSERT INTO personalisation.categories VALUES ('sec-a', NULL, 'A')$$, '42501', NULL, 'nor change the catalogue');

-- What analysts can read shows no identifier in clear: no column named after
-- one, and no value holding one, in any relation they can read (found from
-- the catalog, so views added later are checked too).
SELECT is((SELECT array_agg(c.relname || '.' || a.attname ORDER BY 1)
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
            WHERE c.relnamespace = 'personalisation'::regnamespace
              AND has_table_privilege(c.oid, 'SELECT')
              AND (a.attname IN ('customer_id', 'email', 'session_id', 'order_id', 'event_id', 'profile_id')
                   OR a.attname LIKE '%\_profile\_id')),
          NULL, 'no relation the analyst reads has an identifier column');
CREATE FUNCTION pg_temp.clear_identifiers() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  rel regclass;
  found text[] := '{}';
  hits bigint;
BEGIN
  FOR rel IN SELECT c.oid FROM pg_class c
              WHERE c.relnamespace = 'personalisation'::regnamespace AND has_table_privilege(c.oid, 'SELECT')
  LOOP
    EXECUTE format($q$SELECT count(*) FROM %s r WHERE r::text ~ '(sec-cust-Zq|sec-sess-Zq|sec-order-Zq|@example\.test)'$q$, rel)
       INTO hits;
    IF hits > 0 THEN found := found || rel::text; END IF;
  END LOOP;
  RETURN found;
END $$;
SELECT is(pg_temp.clear_identifiers(), '{}', 'no row the analyst reads holds a customer id, email, session id or order id');
SELECT ok((SELECT count(DISTINCT person_key) = 2 FROM personalisation.orders_report o
            WHERE o.total IN (80, 40) AND o.occurred_at::date IN ('2025-03-01', '2025-03-02')),
          'each person has a key of their own');
SELECT ok((SELECT bool_and(o.person_key IN (SELECT e.person_key FROM personalisation.events_report e))
             FROM personalisation.orders_report o WHERE o.occurred_at::date IN ('2025-03-01', '2025-03-02')),
          'the same key in every view, so rows of one person link up');
SELECT ok((SELECT bool_and(person_key ~ '^[0-9a-f]{32}$') FROM personalisation.people_report),
          'keys are 128-bit keyed hashes');
SELECT isnt((SELECT person_key FROM personalisation.orders_report WHERE total = 80 AND occurred_at = '2025-03-01 09:00+00'),
            (SELECT personalisation._pseudonym(sha256('guess'), 'profile:' || g) FROM generate_series(1, 1) g),
            'a pseudonym cannot be recomputed without the installation''s key');
RESET ROLE;
SELECT is((SELECT person_key FROM personalisation.orders_report WHERE total = 80 AND occurred_at = '2025-03-01 09:00+00'),
          (SELECT personalisation._pseudonym(k.key, 'profile:' || p.profile_id)
             FROM personalisation.profiles p, personalisation.pseudonym_key k WHERE p.customer_id = 'sec-cust-Zq1'),
          'the owner, who holds the key, can tell whose key it is');

-- Delivery workers.
SET ROLE sec_sender_app;
CREATE TEMP TABLE sec_claimed AS
  SELECT * FROM personalisation.claim_messages('sec-sender', 10000) c WHERE c.session_id LIKE 'sec-sess-%';
SELECT ok((SELECT count(*) > 0 FROM sec_claimed), 'the sender claims messages, on the server''s clock');
SELECT ok((SELECT bool_and(payload ? 'items') FROM sec_claimed), 'with the payloads it needs to deliver them');
SELECT is((SELECT personalisation.ack_message(min(message_id), consumer => 'sec-sender') FROM sec_claimed), true,
          'acknowledges one in the name of the consumer that claimed it');
SELECT lives_ok($$SELECT personalisation.ack_messages(ARRAY[]::bigint[], consumer => 'sec-sender')$$, 'acknowledges a batch');
SELECT throws_ok($$SELECT personalisation.fail_message(-1, 'smtp down', consumer => 'sec-sender')$$, 'P0002', NULL,
                 'fail_message is its to call (an unknown message is refused as such)');
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('sec-sender', 10, '5 minutes', '2025-03-01 11:01+00')$$,
                 '42501', NULL, 'the clock is not the sender''s: test/pgtap/outbox_sender.sql tries every function');
SELECT throws_ok($$SELECT count(*) FROM personalisation.outbox$$, '42501', NULL, 'the sender cannot read the outbox itself');
SELECT throws_ok($$SELECT count(*) FROM personalisation.profiles$$, '42501', NULL, 'nor profiles');
SELECT throws_ok($$SELECT count(*) FROM personalisation.events$$, '42501', NULL, 'nor events');
SELECT throws_ok($$SELECT personalisation.track_page_view('sec-x')$$, '42501', NULL, 'nor track');
SELECT throws_ok($$SELECT personalisation.run_due()$$, '42501', NULL, 'nor run the journeys');
SELECT throws_ok($$SELECT count(*) FROM personalisation.journey_report$$, '42501', NULL, 'nor read the reports');
RESET ROLE;

-- A login role that was granted none of them.
SET ROLE sec_stranger;
SELECT throws_ok($$SELECT personalisation.track_page_view('sec-x')$$, '42501', NULL, 'a role without a grant cannot track');
SELECT throws_ok($$SELECT count(*) FROM personalisation.products$$, '42501', NULL, 'nor read the catalogue');
SELECT throws_ok($$SELECT personalisation._pseudonym('\x00'::bytea, 'x')$$, '42501', NULL, 'nor call any function of the schema');
RESET ROLE;

-- A function an upgrade script adds: PostgreSQL grants EXECUTE to PUBLIC on
-- it, until the script's closing apply_access_map() applies the access map,
-- which refuses a function the map does not name.
CREATE FUNCTION personalisation.sec_added_later() RETURNS int LANGUAGE sql AS 'SELECT 1';
SELECT ok(has_function_privilege('public', 'personalisation.sec_added_later()', 'EXECUTE'),
          'a function added to the schema is executable by PUBLIC at first');
SELECT throws_ok($$SELECT personalisation.apply_access_map()$$, 'P0001',
                 'the access map does not say who may use: sec_added_later',
                 'apply_access_map refuses a function the access map does not name');
INSERT INTO personalisation.access_map VALUES ('sec_added_later', 'personalisation_sender', 'owner');
GRANT EXECUTE ON FUNCTION personalisation.track_page_view(text, text, text, timestamptz, text) TO personalisation_sender;
SELECT lives_ok($$SELECT personalisation.apply_access_map()$$, 'once the map names it, apply_access_map applies the map');
SELECT is(ARRAY[has_function_privilege('public', 'personalisation.sec_added_later()', 'EXECUTE'),
                has_function_privilege('personalisation_shop', 'personalisation.sec_added_later()', 'EXECUTE'),
                has_function_privilege('personalisation_sender', 'personalisation.sec_added_later()', 'EXECUTE'),
                (SELECT prosecdef FROM pg_proc WHERE oid = 'personalisation.sec_added_later()'::regprocedure)],
          ARRAY[false, false, true, true], 'the added function is executable by the role the map names and no other, as the owner');
SELECT is(has_function_privilege('personalisation_sender', 'personalisation.track_page_view(text, text, text, timestamptz, text)', 'EXECUTE'),
          false, 'and a grant the map does not make is taken back');

SELECT * FROM finish();
ROLLBACK;
