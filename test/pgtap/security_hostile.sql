-- Hostile input: every function of the extension, found in pg_proc (so
-- functions merged later are covered without being listed), is called with
-- hostile arguments generated per argument type: NULLs everywhere, empty
-- strings, 1 MB strings, control characters, SQL injection in every text
-- argument, huge and multi-dimensional arrays, NaN and infinite numbers and
-- timestamps, huge intervals, malformed and deeply nested JSON.  Each call
-- must succeed or fail with a SQLSTATE from the table in docs/security.md,
-- with a message of reasonable length; the connection must survive; a
-- failed call must leave every table as it was, and the data must be
-- consistent after all the calls that succeeded.
\set sqlstates `sed -n '/^## Errors under hostile input/,/^## /p' "${PERSONALISATION_DOCS-docs}/security.md" | grep -oE '^\| .[0-9A-Z]{5}. \|' | grep -oE '[0-9A-Z]{5}' | paste -sd,`
BEGIN;
SET LOCAL statement_timeout = '300s';
\ir ../security_helpers.sql

CREATE TEMP TABLE hx_documented AS SELECT unnest(string_to_array(:'sqlstates', ',')) AS sqlstate;

-- The functions under test: every function of the schema but trigger functions.
CREATE TEMP TABLE hx_functions AS
SELECT p.oid, p.proname::text AS name, p.oid::regprocedure::text AS signature,
       p.pronargs - p.pronargdefaults AS required,
       (SELECT array_agg(a.name ORDER BY a.n) FROM unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS a(name, mode, n)
         WHERE a.mode IS NULL OR a.mode IN ('i', 'b', 'v')) AS arg_names,
       (SELECT array_agg(t::regtype ORDER BY n) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n)) AS arg_types
  FROM pg_proc p
 WHERE p.pronamespace = 'personalisation'::regnamespace AND p.prokind = 'f'
   AND p.prorettype <> 'trigger'::regtype;
-- Functions whose arguments were declared without names (none today) are called positionally.
UPDATE hx_functions SET arg_names = (SELECT array_agg(NULL::text) FROM generate_series(1, cardinality(arg_types)))
 WHERE arg_names IS NULL AND arg_types IS NOT NULL;

SELECT plan((SELECT count(*)::int FROM hx_functions) + 6);

-- Hostile values per argument type, as SQL expressions.
CREATE TEMP TABLE hx_hostile (type regtype, expr text);
INSERT INTO hx_hostile VALUES
  ('text', 'NULL'), ('text', $$''$$), ('text', $$'   '$$), ('text', $$repeat('x', 1048576)$$),
  ('text', $$E'\x01\x02\x7f'$$), ('text', $$E'tab\there\nnewline'$$), ('text', $$repeat('é', 200)$$),
  ('text', $q$$x$'; DROP TABLE personalisation.events; --$x$$q$), ('text', $q$$x$x' OR '1'='1$x$$q$),
  ('text', $q$$x$"); SELECT pg_sleep(30); --$x$$q$), ('text', $q$$x$%s%n%x\\$x$$q$), ('text', $$'null'$$),
  ('text', $$'push'$$), ('text', $$'email'$$), ('text', $$U&'\FEFF\200B'$$), ('text', $$'a@b'$$),
  ('integer', 'NULL'), ('integer', '0'), ('integer', '-1'), ('integer', '2147483647'), ('integer', '-2147483648'),
  ('bigint', 'NULL'), ('bigint', '0'), ('bigint', '-1'), ('bigint', '9223372036854775807'),
  ('bigint', '-9223372036854775808'),
  ('boolean', 'NULL'), ('boolean', 'true'), ('boolean', 'false'),
  ('double precision', 'NULL'), ('double precision', $$'NaN'$$), ('double precision', $$'Infinity'$$),
  ('double precision', $$'-Infinity'$$), ('double precision', '-1'), ('double precision', '1e308'),
  ('numeric', 'NULL'), ('numeric', $$'NaN'$$), ('numeric', $$'Infinity'$$), ('numeric', $$'-Infinity'$$),
  ('numeric', '-1'), ('numeric', '1e1000'),
  ('timestamp with time zone', 'NULL'), ('timestamp with time zone', $$'infinity'$$),
  ('timestamp with time zone', $$'-infinity'$$), ('timestamp with time zone', $$'4713-01-01 00:00+00 BC'$$),
  ('timestamp with time zone', $$'294276-12-31 23:59:59+00'$$), ('timestamp with time zone', $$'1970-01-01 00:00+00'$$),
  ('timestamp with time zone', $$now() + interval '1 hour'$$),
  ('interval', 'NULL'), ('interval', $$'0'$$), ('interval', $$'-1 day'$$), ('interval', $$'1 month'$$),
  ('interval', $$'178000000 years'$$), ('interval', $$'-178000000 years'$$), ('interval', $$'1 microsecond'$$),
  ('interval', $$'2562047788 hours'$$),
  ('jsonb', 'NULL'), ('jsonb', $$'null'$$), ('jsonb', $$'{}'$$), ('jsonb', $$'[]'$$), ('jsonb', $$'"x"'$$),
  ('jsonb', $$'[null]'$$), ('jsonb', $$'{"a":'$$), ('jsonb', $$'[{"product_id": "\u0000"}]'$$),
  ('jsonb', $$(repeat('[', 100000) || repeat(']', 100000))::jsonb$$),
  ('jsonb', $$(repeat('[', 1000) || repeat(']', 1000))::jsonb$$),
  ('jsonb', $$(repeat('{"a":', 1000) || '1' || repeat('}', 1000))::jsonb$$),
  ('jsonb', $$(SELECT jsonb_agg(jsonb_build_object('product_id', 'hx-p', 'quantity', 1, 'unit_price', 1)) FROM generate_series(1, 100000))$$),
  ('jsonb', $$'[{"product_id": "hx-p", "quantity": 1e1000, "unit_price": 1e1000}]'$$),
  ('jsonb', $$'[{"product_id": "hx-p", "quantity": 2147483648, "unit_price": -0}]'$$),
  ('jsonb', $$'[{"product_id": "hx-p", "quantity": 1, "unit_price": 1e-1000}]'$$),
  ('jsonb', $$'[{"product_id": ["hx-p"], "quantity": {}, "unit_price": []}]'$$),
  ('jsonb', $$jsonb_build_array(jsonb_build_object('product_id', repeat('x', 1048576), 'quantity', 1, 'unit_price', 1))$$),
  ('text[]', 'NULL'), ('text[]', $$'{}'$$), ('text[]', $$'{NULL}'$$), ('text[]', $$ARRAY[repeat('x', 1048576)]$$),
  ('text[]', $$(SELECT array_agg('hx-' || i) FROM generate_series(1, 100000) i)$$), ('text[]', $$'{{a,b},{c,d}}'$$),
  ('text[]', $q$ARRAY[$x$'; DROP TABLE personalisation.products; --$x$]$q$), ('text[]', $$'[5:6]={a,b}'$$),
  ('bigint[]', 'NULL'), ('bigint[]', $$'{}'$$), ('bigint[]', $$'{NULL}'$$),
  ('bigint[]', $$(SELECT array_agg(i) FROM generate_series(1, 100000) i)$$), ('bigint[]', $$'{{1,2},{3,4}}'$$),
  ('bigint[]', $$ARRAY[-1, 9223372036854775807]$$), ('bigint[]', $$'[5:6]={1,2}'$$),
  ('bytea', 'NULL'), ('bytea', $$''$$), ('bytea', $$'\x00'$$), ('bytea', $$decode(repeat('ff', 1048576), 'hex')$$);

-- A harmless value for the arguments not under test, by argument name, else by type.
CREATE TEMP TABLE hx_benign (name text, type regtype, expr text);
INSERT INTO hx_benign VALUES
  ('session_id', 'text', $$'hx-s'$$), ('product_id', 'text', $$'hx-p'$$), ('category_id', 'text', $$'hx-c'$$),
  ('customer_id', 'text', $$'hx-cust'$$), ('email', 'text', $$'hx@example.test'$$),
  ('order_id', 'text', $$'hx-order'$$), ('channel', 'text', $$'email'$$), ('consumer', 'text', $$'hx-consumer'$$),
  ('items', 'jsonb', $$'[{"product_id": "hx-p", "quantity": 1, "unit_price": 5}]'$$),
  ('candidates', 'text[]', $$ARRAY['hx-p']$$), ('key', 'bytea', $$sha256('hx')$$),
  (NULL, 'text', $$'hx-value'$$), (NULL, 'integer', '1'), (NULL, 'bigint', '1'), (NULL, 'boolean', 'true'),
  (NULL, 'double precision', '1'), (NULL, 'numeric', '1'), (NULL, 'timestamp with time zone', 'now()'),
  (NULL, 'interval', $$'5 minutes'$$), (NULL, 'jsonb', $$'{}'$$), (NULL, 'text[]', $$'{hx}'$$),
  (NULL, 'bigint[]', $$'{1}'$$), (NULL, 'bytea', $$sha256('hx')$$);

-- A small shop for the calls to act on: a product, a customer with a cart,
-- an abandoned cart with a message queued and one claimed.
INSERT INTO personalisation.categories VALUES ('hx-c', NULL, 'Hostile');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('hx-p', 'hx-c', 'Anvil', 5);
SELECT personalisation.set_consent('hx-s', 'push', true, now() - interval '2 hours');
SELECT personalisation.track_cart_add('hx-s', 'hx-p', 1, now() - interval '2 hours');
SELECT personalisation.identify('hx-s', 'hx-cust', 'hx@example.test', now() - interval '2 hours');
SELECT personalisation.run_due(now() - interval '1 hour');
SELECT count(*) FROM personalisation.claim_messages('hx-consumer', 1, '5 minutes', now() - interval '1 hour');

-- Every table of the schema, digested: equal digests mean nothing changed.
CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t record;
  digest text;
  all_digests text := '';
BEGIN
  FOR t IN SELECT * FROM schema_tables ORDER BY name LOOP
    EXECUTE format('SELECT md5(coalesce(string_agg(r::text, %L ORDER BY r::text), %L)) FROM %s r', E'\n', '', t.rel)
       INTO digest;
    all_digests := all_digests || t.name || ':' || digest || ' ';
  END LOOP;
  RETURN all_digests;
END $$;

-- Consistency of what the calls may have written: no partial rows.
CREATE FUNCTION pg_temp.inconsistencies() RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(problem), '{}') FROM (
    SELECT 'session without profile ' || s.session_id AS problem FROM personalisation.sessions s
     WHERE NOT EXISTS (SELECT FROM personalisation.profiles p WHERE p.profile_id = s.profile_id)
    UNION ALL
    SELECT 'cart of profile ' || c.profile_id || ' counts ' || c.line_count || ' lines' FROM personalisation.carts c
     WHERE c.line_count <> (SELECT count(*) FROM personalisation.cart_lines l WHERE l.profile_id = c.profile_id)
    UNION ALL
    SELECT 'order ' || o.order_id || ' disagrees with its lines' FROM personalisation.orders o
     WHERE (o.line_count, o.total) IS DISTINCT FROM
           (SELECT (count(*)::int, sum(l.quantity * l.unit_price)) FROM personalisation.order_lines l WHERE l.order_id = o.order_id)
    UNION ALL
    SELECT 'order ' || o.order_id || ' without its purchase event' FROM personalisation.orders o
     WHERE NOT EXISTS (SELECT FROM personalisation.events e WHERE e.kind = 'purchase' AND e.order_id = o.order_id)
    UNION ALL
    SELECT 'sent step without its message, run ' || s.run_id FROM personalisation.journey_run_steps s
     WHERE s.outcome = 'sent' AND NOT EXISTS (SELECT FROM personalisation.outbox o
                                               WHERE o.message_id = s.message_id AND o.profile_id = s.profile_id)
    UNION ALL
    SELECT 'message without its run ' || o.message_id FROM personalisation.outbox o
     WHERE NOT EXISTS (SELECT FROM personalisation.journey_runs r WHERE r.profile_id = o.profile_id AND r.run_id = o.run_id)
  ) problems
$$;

-- call_text(function, at, expression): the call with the argument at
-- position at (0: none) set to expression, required arguments set to harmless
-- values and optional ones left to their defaults.  at = -1 sets every
-- text argument to expression.
CREATE FUNCTION pg_temp.call_text(f hx_functions, at int, expression text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  args text[] := '{}';
  value text;
  named boolean := f.arg_names IS NOT NULL AND array_position(f.arg_names, NULL) IS NULL;
BEGIN
  FOR i IN 1 .. coalesce(cardinality(f.arg_types), 0) LOOP
    IF i = at OR (at = -1 AND f.arg_types[i] = 'text'::regtype) THEN
      value := expression;
    ELSIF i <= f.required OR NOT named THEN
      SELECT b.expr INTO value FROM hx_benign b
       WHERE b.type = f.arg_types[i] AND (b.name = f.arg_names[i] OR b.name IS NULL)
       ORDER BY b.name IS NULL LIMIT 1;
      IF value IS NULL THEN
        RAISE EXCEPTION 'no harmless value for argument % of type %', f.arg_names[i], f.arg_types[i];
      END IF;
    ELSE
      CONTINUE;
    END IF;
    args := args || CASE WHEN named THEN format('%I => (%s)::%s', f.arg_names[i], value, f.arg_types[i])
                         ELSE format('(%s)::%s', value, f.arg_types[i]) END;
  END LOOP;
  RETURN format('SELECT personalisation.%I(%s)', f.name, array_to_string(args, ', '));
END $$;

-- The calls: all arguments NULL; each argument in turn with each hostile
-- value of its type; every text argument injected at once.
CREATE TEMP TABLE hx_calls AS
SELECT f.name AS function_name,
       format('SELECT personalisation.%I(%s)', f.name,
              (SELECT string_agg(format('NULL::%s', t), ', ' ORDER BY n)
                 FROM unnest(f.arg_types) WITH ORDINALITY AS a(t, n))) AS call
  FROM hx_functions f
UNION ALL
SELECT f.name, pg_temp.call_text(f, a.n::int, h.expr)
  FROM hx_functions f, unnest(f.arg_types) WITH ORDINALITY AS a(t, n) JOIN hx_hostile h ON h.type = a.t
UNION ALL
SELECT f.name, pg_temp.call_text(f, -1, $q$$x$'); DELETE FROM personalisation.products; --$x$$q$)
  FROM hx_functions f WHERE 'text'::regtype = ANY (f.arg_types);

SELECT is((SELECT array_agg(DISTINCT f.name || '(' || t || ')') FROM hx_functions f, unnest(f.arg_types) t
            WHERE NOT EXISTS (SELECT FROM hx_hostile h WHERE h.type = t)),
          NULL, 'every argument type of every function has hostile values');
SELECT ok((SELECT count(*) >= 10 FROM hx_documented), 'the documented SQLSTATEs are read from docs/security.md: ' || :'sqlstates');

-- Run every call in a savepoint: a failed call is rolled back to it, and
-- every table must then be as it was before the call.
CREATE TEMP TABLE hx_results (function_name text, call text, sqlstate text, message text, unchanged boolean);
DO $$
DECLARE
  c record;
  before text;
  state text;
  message text;
BEGIN
  FOR c IN SELECT * FROM hx_calls LOOP
    before := pg_temp.fingerprint();
    BEGIN
      EXECUTE c.call;
      INSERT INTO hx_results VALUES (c.function_name, c.call, NULL, NULL, NULL);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
      INSERT INTO hx_results VALUES (c.function_name, c.call, state, message, pg_temp.fingerprint() = before);
    END;
  END LOOP;
END $$;

-- One verdict per function: every call succeeded or failed cleanly.
CREATE FUNCTION pg_temp.verdict(fn text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  bad record;
  calls bigint;
  errors text;
BEGIN
  SELECT count(*), string_agg(DISTINCT sqlstate, ' ') INTO calls, errors FROM hx_results WHERE function_name = fn;
  RETURN NEXT ok(calls > 0 AND NOT EXISTS (
                   SELECT FROM hx_results r WHERE r.function_name = fn AND r.sqlstate IS NOT NULL
                      AND (r.sqlstate NOT IN (SELECT sqlstate FROM hx_documented) OR length(r.message) > 2000
                           OR NOT r.unchanged)),
                 format('%s: %s hostile calls, each a success or a clean error (%s)', fn, calls, coalesce(errors, 'none')));
  FOR bad IN SELECT * FROM hx_results r WHERE r.function_name = fn AND r.sqlstate IS NOT NULL
                AND (r.sqlstate NOT IN (SELECT sqlstate FROM hx_documented) OR length(r.message) > 2000 OR NOT r.unchanged)
              LIMIT 5 LOOP
    RETURN NEXT diag(format('%s %s%s after %s', bad.sqlstate, left(bad.message, 300),
                            CASE WHEN bad.unchanged THEN '' ELSE ' (tables changed)' END, left(bad.call, 300)));
  END LOOP;
END $$;
SELECT pg_temp.verdict(name) FROM hx_functions ORDER BY name;

SELECT is((SELECT count(*) FROM hx_results r WHERE r.sqlstate IS NOT NULL AND NOT r.unchanged), 0::bigint,
          'no failed call left anything behind');
SELECT is(pg_temp.inconsistencies(), '{}', 'after all the calls, the data holds no partial or inconsistent rows');
SELECT ok((SELECT count(*) = 2 FROM pg_class WHERE relnamespace = 'personalisation'::regnamespace
            AND relname IN ('events', 'products')), 'no injected statement ran: the tables are all there');
SELECT ok((SELECT count(*) > 0 FROM personalisation.products), 'and the catalogue was not emptied');

SELECT * FROM finish();
ROLLBACK;
