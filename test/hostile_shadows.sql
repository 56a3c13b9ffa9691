-- Hostile shadows for test/hostile.sh: in schema public, an operator for
-- each common operator name and argument pair, and a function or aggregate
-- for each function the extension's statements might call unqualified, all
-- with the signatures of the built-ins (or a better match than them).  A
-- shadow behaves as the built-in it shadows, so that the test files' own
-- statements and pgTAP keep working, except when called armed
-- (hostile.armed = on, which the hostile pass sets on every function of the
-- extension and for the sessions of the extension's owner, the background
-- worker's): then it counts the call in public.hostile_hits (a sequence, so
-- a caught error is still counted), logs it and raises.
--
-- public.hostile_probes lists, per shadow, an unqualified probe expression;
-- test/hostile.sh runs each one armed under the database's search_path to
-- prove the shadow is what a plain query resolves to.
SET search_path = pg_catalog, pg_temp;

CREATE SEQUENCE public.hostile_hits;

CREATE TABLE public.hostile_probes (shadow text PRIMARY KEY, probe text NOT NULL);

-- hostile_reached(shadow, type) is what an armed shadow does; it returns
-- the shadow's result type (of the NULL passed in), for the CASE the
-- shadows are written as.  It is declared STABLE (a lie, as it bumps the
-- counter) so that a shadow written in SQL is inlined into the query that
-- calls it and costs next to nothing when it is not armed.
CREATE FUNCTION public.hostile_reached(shadow text, result anyelement) RETURNS anyelement
LANGUAGE plpgsql STABLE AS $f$
BEGIN
    PERFORM pg_catalog.nextval('public.hostile_hits'::pg_catalog.regclass);
    RAISE WARNING 'hostile shadow reached: %', shadow;
    RAISE EXCEPTION 'hostile shadow reached: %', shadow
        USING HINT = 'A statement resolved a function or operator of schema public: qualify it with pg_catalog.';
END
$f$;

-- hostile_armed() reports whether the calling context is armed.
CREATE FUNCTION public.hostile_armed() RETURNS boolean LANGUAGE sql STABLE AS $f$
    SELECT COALESCE(pg_catalog.current_setting('hostile.armed', true) OPERATOR(pg_catalog.=) 'on', false)
$f$;

DO $setup$
DECLARE
    op text;
    pair text[];
    result_type text;
    fn text;
    n int := 0;
    comparisons text[] := ARRAY['=', '<>', '<', '<=', '>', '>='];
    arithmetic text[] := ARRAY['+', '-', '*', '/'];
    scalar_types text[] := ARRAY['text', 'integer', 'bigint', 'numeric', 'double precision',
                                 'timestamp with time zone', 'interval', 'boolean', 'jsonb', 'text[]', 'bigint[]'];
    mixed_pairs text[] := ARRAY[
        ['text', 'bigint'], ['text', 'integer'], ['bigint', 'text'], ['integer', 'text'],
        ['text', 'numeric'], ['text', 'double precision'], ['text', 'timestamp with time zone'],
        ['integer', 'bigint'], ['bigint', 'integer'], ['numeric', 'integer'], ['integer', 'numeric'],
        ['numeric', 'bigint'], ['bigint', 'numeric'], ['double precision', 'integer'],
        ['integer', 'double precision'], ['double precision', 'bigint'], ['bigint', 'double precision'],
        ['double precision', 'numeric'], ['numeric', 'double precision'],
        ['timestamp with time zone', 'interval'], ['interval', 'timestamp with time zone'],
        ['interval', 'double precision'], ['double precision', 'interval'],
        ['interval', 'integer'], ['integer', 'interval'], ['interval', 'numeric'],
        ['jsonb', 'text'], ['jsonb', 'integer'], ['jsonb', 'text[]'], ['text[]', 'text'], ['bigint[]', 'bigint']];
    pairs text[] := '{}';
    binary_ops text[];
BEGIN
    FOREACH fn IN ARRAY scalar_types LOOP
        pairs := pairs || ARRAY[[fn, fn]];
    END LOOP;
    pairs := pairs || mixed_pairs;
    binary_ops := comparisons || arithmetic || ARRAY['||', '%', '~~', '->', '->>', '#>', '#>>', '@>', '<@', '&&', '?'];

    -- binary operators: every name on every pair the built-ins define it for
    FOREACH pair SLICE 1 IN ARRAY pairs LOOP
        FOREACH op IN ARRAY binary_ops LOOP
            BEGIN
                EXECUTE pg_catalog.format('SELECT pg_catalog.pg_typeof(NULL::%s OPERATOR(pg_catalog.%s) NULL::%s)::text',
                                          pair[1], op, pair[2]) INTO result_type;
            EXCEPTION WHEN OTHERS THEN
                CONTINUE;
            END;
            n := n + 1;
            EXECUTE pg_catalog.format($$
                CREATE FUNCTION public.hostile_op_%s(l %s, r %s) RETURNS %s LANGUAGE sql STABLE AS $b$
                    SELECT CASE WHEN public.hostile_armed() THEN public.hostile_reached(%L, NULL::%s)
                                ELSE l OPERATOR(pg_catalog.%s) r END
                $b$
            $$, n, pair[1], pair[2], result_type,
                pg_catalog.format('public.%s(%s, %s)', op, pair[1], pair[2]), result_type, op);
            EXECUTE pg_catalog.format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.hostile_op_%s)',
                                      op, pair[1], pair[2], n);
            INSERT INTO public.hostile_probes VALUES
                (pg_catalog.format('public.%s(%s, %s)', op, pair[1], pair[2]),
                 pg_catalog.format('NULL::%s %s NULL::%s', pair[1], op, pair[2]));
        END LOOP;
    END LOOP;

    -- prefix minus
    FOREACH fn IN ARRAY ARRAY['integer', 'bigint', 'numeric', 'double precision', 'interval'] LOOP
        n := n + 1;
        EXECUTE pg_catalog.format($$
            CREATE FUNCTION public.hostile_op_%s(r %s) RETURNS %s LANGUAGE sql STABLE AS $b$
                SELECT CASE WHEN public.hostile_armed() THEN public.hostile_reached(%L, NULL::%s)
                            ELSE OPERATOR(pg_catalog.-) r END
            $b$
            $$, n, fn, fn, pg_catalog.format('public.-(NONE, %s)', fn), fn);
        EXECUTE pg_catalog.format('CREATE OPERATOR public.- (RIGHTARG = %s, FUNCTION = public.hostile_op_%s)', fn, n);
        INSERT INTO public.hostile_probes VALUES
            (pg_catalog.format('public.-(NONE, %s)', fn), pg_catalog.format('- NULL::%s', fn));
    END LOOP;
END
$setup$;

-- Functions, with the built-in's signature: each delegates unless armed
-- (STABLE, so that it is inlined, but for the volatile built-ins).
DO $setup$
DECLARE
    f text[];
BEGIN
    -- name, arguments (declaration), result, call of the built-in, probe
    FOREACH f SLICE 1 IN ARRAY ARRAY[
        ['now', '', 'timestamp with time zone', 'pg_catalog.now()', 'now()'],
        ['clock_timestamp', '', 'timestamp with time zone', 'pg_catalog.clock_timestamp()', 'clock_timestamp()'],
        ['statement_timestamp', '', 'timestamp with time zone', 'pg_catalog.statement_timestamp()', 'statement_timestamp()'],
        ['lower', 'a text', 'text', 'pg_catalog.lower(a)', $$lower('x'::text)$$],
        ['upper', 'a text', 'text', 'pg_catalog.upper(a)', $$upper('x'::text)$$],
        ['btrim', 'a text', 'text', 'pg_catalog.btrim(a)', $$btrim('x'::text)$$],
        ['length', 'a text', 'integer', 'pg_catalog.length(a)', $$length('x'::text)$$],
        ['substr', 'a text, b integer', 'text', 'pg_catalog.substr(a, b)', $$substr('x'::text, 1)$$],
        ['substr', 'a text, b integer, c integer', 'text', 'pg_catalog.substr(a, b, c)', $$substr('x'::text, 1, 1)$$],
        ['left', 'a text, b integer', 'text', 'pg_catalog.left(a, b)', $$left('x'::text, 1)$$],
        ['md5', 'a text', 'text', 'pg_catalog.md5(a)', $$md5('x'::text)$$],
        ['format', 'a text', 'text', 'pg_catalog.format(a)', $$format('x'::text)$$],
        ['hashtext', 'a text', 'integer', 'pg_catalog.hashtext(a)', $$hashtext('x'::text)$$],
        ['hashtextextended', 'a text, b bigint', 'bigint', 'pg_catalog.hashtextextended(a, b)', $$hashtextextended('x'::text, 1::bigint)$$],
        ['nextval', 'a regclass', 'bigint', 'pg_catalog.nextval(a)', $$nextval('public.hostile_hits'::regclass)$$],
        ['cardinality', 'a text[]', 'integer', 'pg_catalog.cardinality(a)', $$cardinality('{}'::text[])$$],
        ['cardinality', 'a bigint[]', 'integer', 'pg_catalog.cardinality(a)', $$cardinality('{}'::bigint[])$$],
        ['array_length', 'a text[], b integer', 'integer', 'pg_catalog.array_length(a, b)', $$array_length('{}'::text[], 1)$$],
        ['array_position', 'a text[], b text', 'integer', 'pg_catalog.array_position(a, b)', $$array_position('{}'::text[], 'x'::text)$$],
        ['to_jsonb', 'a text', 'jsonb', 'pg_catalog.to_jsonb(a)', $$to_jsonb('x'::text)$$],
        ['jsonb_typeof', 'a jsonb', 'text', 'pg_catalog.jsonb_typeof(a)', $$jsonb_typeof('{}'::jsonb)$$],
        ['jsonb_array_length', 'a jsonb', 'integer', 'pg_catalog.jsonb_array_length(a)', $$jsonb_array_length('[]'::jsonb)$$],
        ['jsonb_build_object', 'a text, b text', 'jsonb', 'pg_catalog.jsonb_build_object(a, b)', $$jsonb_build_object('x'::text, 'y'::text)$$],
        ['power', 'a double precision, b double precision', 'double precision', 'pg_catalog.power(a, b)', $$power(2::float8, 2::float8)$$],
        ['abs', 'a double precision', 'double precision', 'pg_catalog.abs(a)', $$abs(1::float8)$$],
        ['exp', 'a double precision', 'double precision', 'pg_catalog.exp(a)', $$exp(1::float8)$$],
        ['round', 'a numeric, b integer', 'numeric', 'pg_catalog.round(a, b)', $$round(1::numeric, 1)$$],
        ['pg_advisory_xact_lock', 'a bigint', 'void', 'pg_catalog.pg_advisory_xact_lock(a)', $$pg_advisory_xact_lock(1::bigint)$$],
        ['pg_advisory_xact_lock', 'a integer, b integer', 'void', 'pg_catalog.pg_advisory_xact_lock(a, b)', $$pg_advisory_xact_lock(1, 1)$$],
        ['to_regclass', 'a text', 'regclass', 'pg_catalog.to_regclass(a)', $$to_regclass('x'::text)$$],
        ['date_trunc', 'a text, b timestamp with time zone', 'timestamp with time zone', 'pg_catalog.date_trunc(a, b)', $$date_trunc('day'::text, NULL::timestamptz)$$]]
    LOOP
        IF f[3] = 'void' THEN
            EXECUTE pg_catalog.format($$
                CREATE FUNCTION public.%I(%s) RETURNS void LANGUAGE plpgsql AS $b$
                BEGIN
                    IF public.hostile_armed() THEN PERFORM public.hostile_reached(%L, NULL::text); END IF;
                    PERFORM %s;
                END $b$
                $$, f[1], f[2], pg_catalog.format('public.%s(%s)', f[1], f[2]), f[4]);
        ELSE
            EXECUTE pg_catalog.format($$
                CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE sql %s AS $b$
                    SELECT CASE WHEN public.hostile_armed() THEN public.hostile_reached(%L, NULL::%s) ELSE %s END
                $b$
                $$, f[1], f[2], f[3],
                CASE WHEN f[1] IN ('nextval', 'clock_timestamp') THEN 'VOLATILE' ELSE 'STABLE' END,
                pg_catalog.format('public.%s(%s)', f[1], f[2]), f[3], f[4]);
        END IF;
        INSERT INTO public.hostile_probes VALUES (pg_catalog.format('public.%s(%s)', f[1], f[2]), f[5]);
    END LOOP;

    -- set-returning functions
    FOREACH f SLICE 1 IN ARRAY ARRAY[
        ['unnest', 'text[]', 'text'], ['unnest', 'bigint[]', 'bigint'], ['unnest', 'integer[]', 'integer'],
        ['jsonb_array_elements', 'jsonb', 'jsonb']]
    LOOP
        EXECUTE pg_catalog.format($$
            CREATE FUNCTION public.%I(a %s) RETURNS SETOF %s LANGUAGE sql STABLE AS $b$
                SELECT * FROM pg_catalog.%I(CASE WHEN public.hostile_armed() THEN public.hostile_reached(%L, a) ELSE a END)
            $b$
            $$, f[1], f[2], f[3], f[1], pg_catalog.format('public.%s(%s)', f[1], f[2]));
        INSERT INTO public.hostile_probes VALUES
            (pg_catalog.format('public.%s(%s)', f[1], f[2]),
             pg_catalog.format('(SELECT pg_catalog.count(*) FROM %s(NULL::%s))', f[1], f[2]));
    END LOOP;
END
$setup$;

-- Aggregates, with the built-in's signature and result (not array_agg and
-- string_agg: a state copied per row would make the tests' large
-- aggregates quadratic; the extension's statements qualify both anyway).
DO $setup$
DECLARE
    a text[];
    n int := 0;
BEGIN
    -- name, argument, state and result type, state transition (s, v), initial state
    FOREACH a SLICE 1 IN ARRAY ARRAY[
        ['count', '*', 'bigint', 's OPERATOR(pg_catalog.+) 1', '0'],
        ['count', 'integer', 'bigint', 'CASE WHEN v IS NULL THEN s ELSE s OPERATOR(pg_catalog.+) 1 END', '0'],
        ['count', 'bigint', 'bigint', 'CASE WHEN v IS NULL THEN s ELSE s OPERATOR(pg_catalog.+) 1 END', '0'],
        ['count', 'text', 'bigint', 'CASE WHEN v IS NULL THEN s ELSE s OPERATOR(pg_catalog.+) 1 END', '0'],
        ['sum', 'integer', 'bigint', 'COALESCE(s OPERATOR(pg_catalog.+) v, s, v)', NULL],
        ['sum', 'bigint', 'numeric', 'COALESCE(s OPERATOR(pg_catalog.+) v, s, v)', NULL],
        ['sum', 'numeric', 'numeric', 'COALESCE(s OPERATOR(pg_catalog.+) v, s, v)', NULL],
        ['sum', 'double precision', 'double precision', 'COALESCE(s OPERATOR(pg_catalog.+) v, s, v)', NULL],
        ['min', 'timestamp with time zone', 'timestamp with time zone', 'LEAST(s, v)', NULL],
        ['max', 'timestamp with time zone', 'timestamp with time zone', 'GREATEST(s, v)', NULL],
        ['min', 'bigint', 'bigint', 'LEAST(s, v)', NULL],
        ['max', 'bigint', 'bigint', 'GREATEST(s, v)', NULL],
        ['max', 'integer', 'integer', 'GREATEST(s, v)', NULL],
        ['max', 'interval', 'interval', 'GREATEST(s, v)', NULL],
        ['min', 'text', 'text', 'LEAST(s, v)', NULL],
        ['max', 'text', 'text', 'GREATEST(s, v)', NULL]]
    LOOP
        n := n + 1;
        EXECUTE pg_catalog.format($$
            CREATE FUNCTION public.hostile_agg_%s(s %s%s) RETURNS %s LANGUAGE sql STABLE AS $b$
                SELECT CASE WHEN public.hostile_armed() THEN public.hostile_reached(%L, NULL::%s) ELSE %s END
            $b$
            $$, n, a[3],
            CASE a[2] WHEN '*' THEN '' WHEN 'text, text' THEN ', v text, d text' ELSE ', v ' || a[2] END,
            a[3], pg_catalog.format('public.%s(%s)', a[1], a[2]), a[3], a[4]);
        EXECUTE pg_catalog.format('CREATE AGGREGATE public.%I(%s) (SFUNC = public.hostile_agg_%s, STYPE = %s%s)',
                                  a[1], a[2], n, a[3],
                                  CASE WHEN a[5] IS NULL THEN '' ELSE pg_catalog.format(', INITCOND = %L', a[5]) END);
        INSERT INTO public.hostile_probes VALUES
            (pg_catalog.format('public.%s(%s)', a[1], a[2]),
             pg_catalog.format('(SELECT %s(%s) FROM (VALUES (1)) v)', a[1],
                               CASE a[2] WHEN '*' THEN '*' WHEN 'text, text' THEN 'NULL::text, NULL::text'
                                    ELSE 'NULL::' || a[2] END));
    END LOOP;
END
$setup$;
