
-- Affinity and ranking (docs/ranking.md): the time-decayed affinity of every
-- session and profile, the popularity prior, the ranking functions, the
-- ranking holdout and the analyst views over them.

-- The affinity model: one row per profile (session_id '') and per session.
-- entries packs (key bigint, score float8) pairs sorted by key, all valid at
-- decayed_to; only the C functions below read and write it.  Every event
-- rewrites both of its rows in place (a HOT update: the key never changes),
-- so the pages keep room for the new versions; entries stays uncompressed
-- and in line (at most 250 entries of 12 bytes).
CREATE TABLE personalisation.affinity (
    profile_id  bigint NOT NULL,
    session_id  text NOT NULL,
    decayed_to  timestamptz NOT NULL,
    entries     bytea NOT NULL,
    PRIMARY KEY (profile_id, session_id)
) WITH (fillfactor = 70);
ALTER TABLE personalisation.affinity ALTER COLUMN entries SET STORAGE PLAIN;
COMMENT ON TABLE personalisation.affinity IS
    'Time-decayed affinity per profile (session_id empty) and per session; read it through affinity_scores.';

-- The popularity prior, recomputed by refresh_popularity(): a share of the
-- most popular (score 0 to 1) for products and categories.
CREATE TABLE personalisation.product_popularity (
    product_id      text PRIMARY KEY,
    weighted_events float8 NOT NULL,
    score           float8 NOT NULL CHECK (score > 0 AND score <= 1),
    computed_at     timestamptz NOT NULL
);

CREATE TABLE personalisation.category_popularity (
    category_id     text PRIMARY KEY,
    weighted_events float8 NOT NULL,
    score           float8 NOT NULL CHECK (score > 0 AND score <= 1),
    computed_at     timestamptz NOT NULL
);

-- Internal: the fold of two stored affinities, used by the tracking upsert.
CREATE FUNCTION personalisation.affinity_fold(
    entries bytea, decayed_to timestamptz,
    other bytea, other_decayed_to timestamptz,
    session_scope boolean)
RETURNS bytea LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'affinity_fold';

-- A stored affinity's entries, decayed to `at`.
CREATE FUNCTION personalisation._affinity_entries(
    entries bytea, decayed_to timestamptz, session_scope boolean,
    at timestamptz DEFAULT pg_catalog.now(),
    OUT dimension text, OUT key_hash bigint, OUT score float8)
RETURNS SETOF record LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'affinity_entries';

-- The key a category, product or brand is scored under.
CREATE FUNCTION personalisation._affinity_key(dimension text, key text)
RETURNS bigint LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'affinity_key';

CREATE FUNCTION personalisation.rebuild_affinity(profile_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'rebuild_affinity';

CREATE FUNCTION personalisation.expire_session_affinity(now timestamptz DEFAULT pg_catalog.now())
RETURNS bigint LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'expire_session_affinity';

CREATE FUNCTION personalisation.refresh_popularity(
    now timestamptz DEFAULT pg_catalog.now(),
    OUT products bigint, OUT categories bigint)
RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'refresh_popularity';

-- Ranking exposures: one row per session, written by its first rank_* call
-- (at its `at`), with the arm it was ranked in.  rank_* keeps the session in
-- that arm and the ranking_holdout report counts it there, whatever
-- personalisation.ranking_holdout_percent becomes later.
CREATE TABLE personalisation.ranking_exposures (
    session_id text PRIMARY KEY,
    arm        text NOT NULL CHECK (arm IN ('personalised', 'control')),
    exposed_at timestamptz NOT NULL
);

-- Ranking.  A first ranking writes the session's exposure: the functions are volatile.
CREATE FUNCTION personalisation.rank_products(
    session_id text,
    candidates text[],
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (product_id text, score float8, "position" int, reason jsonb)
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 100
AS 'MODULE_PATHNAME', 'rank_products';

CREATE FUNCTION personalisation.rank_categories(
    session_id text,
    candidates text[],
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (category_id text, score float8, "position" int, reason jsonb)
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 20
AS 'MODULE_PATHNAME', 'rank_categories';

CREATE FUNCTION personalisation.rank_modules(
    session_id text,
    modules jsonb,
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (module text, category_id text, score float8, "position" int, reason jsonb)
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 20
AS 'MODULE_PATHNAME', 'rank_modules';
-- modules as a string: parsed by rank_modules itself, so that a JSON syntax
-- error gets the extension's message and hint.
CREATE FUNCTION personalisation.rank_modules(
    session_id text,
    modules text,
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (module text, category_id text, score float8, "position" int, reason jsonb)
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 20
AS 'MODULE_PATHNAME', 'rank_modules';

-- The ranking holdout: 'personalised' or 'control', the arm recorded at the
-- session's first ranking; before it, by a hash of the session while the
-- visitor is anonymous and of the customer's profile once identified.
CREATE FUNCTION personalisation.holdout_arm(session_id text)
RETURNS text LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'holdout_arm_session';

-- The same without a lookup: by the session while anonymous (customer_profile_id
-- NULL), by the customer's profile once identified.
CREATE FUNCTION personalisation._holdout_arm(session_id text, customer_profile_id bigint)
RETURNS text LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'holdout_arm_of';

-- The category tree and the facts of products tracked or ranked lately
-- (category, brand, stock, popularity) are cached by every backend: a change
-- makes them read again.
CREATE FUNCTION personalisation._catalogue_changed()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'catalogue_changed';

CREATE TRIGGER category_tree_changed
    AFTER INSERT OR UPDATE OR DELETE ON personalisation.categories
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation._catalogue_changed();
CREATE TRIGGER category_tree_truncated
    AFTER TRUNCATE ON personalisation.categories
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation._catalogue_changed();
CREATE TRIGGER product_facets_changed
    AFTER INSERT OR UPDATE OR DELETE ON personalisation.products
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation._catalogue_changed();
CREATE TRIGGER product_facets_truncated
    AFTER TRUNCATE ON personalisation.products
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation._catalogue_changed();
CREATE TRIGGER product_popularity_changed
    AFTER INSERT OR UPDATE OR DELETE ON personalisation.product_popularity
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation._catalogue_changed();
CREATE TRIGGER product_popularity_truncated
    AFTER TRUNCATE ON personalisation.product_popularity
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation._catalogue_changed();
-- They fire for replicated changes too (session_replication_role = replica, as
-- in a logical replication apply worker): a catalogue fed from elsewhere
-- must not leave stale copies behind.
ALTER TABLE personalisation.categories
    ENABLE ALWAYS TRIGGER category_tree_changed, ENABLE ALWAYS TRIGGER category_tree_truncated;
ALTER TABLE personalisation.products
    ENABLE ALWAYS TRIGGER product_facets_changed, ENABLE ALWAYS TRIGGER product_facets_truncated;
ALTER TABLE personalisation.product_popularity
    ENABLE ALWAYS TRIGGER product_popularity_changed, ENABLE ALWAYS TRIGGER product_popularity_truncated;

-- Every category, product and brand with the key its affinity is stored under.
CREATE VIEW personalisation._affinity_dimensions AS
SELECT 'category'::text AS dimension, c.category_id AS key,
       personalisation._affinity_key('category', c.category_id) AS key_hash
  FROM personalisation.categories c
UNION ALL
SELECT 'product', p.product_id, personalisation._affinity_key('product', p.product_id)
  FROM personalisation.products p
UNION ALL
SELECT 'brand', b.brand, personalisation._affinity_key('brand', b.brand)
  FROM (SELECT DISTINCT brand FROM personalisation.products WHERE brand IS NOT NULL) b;

-- Analysts: every current score, decayed to now, per profile (scope
-- 'profile') and per session of it (scope 'session').  key is NULL for a
-- category, product or brand that has left the catalogue since.
CREATE VIEW personalisation.affinity_scores AS
SELECT a.profile_id,
       CASE WHEN a.session_id = '' THEN 'profile' ELSE 'session' END AS scope,
       NULLIF(a.session_id, '') AS session_id,
       e.dimension,
       d.key,
       e.score,
       a.decayed_to AS last_event_at
  FROM personalisation.affinity a
 CROSS JOIN LATERAL personalisation._affinity_entries(a.entries, a.decayed_to, a.session_id <> '') e
  LEFT JOIN personalisation._affinity_dimensions d
         ON d.dimension = e.dimension AND d.key_hash = e.key_hash;

-- Analysts: the ranking holdout's outcome.  Each session counts in the arm
-- recorded at its first ranking (ranking_exposures), sessions never ranked
-- not at all; it converted if it placed an order within
-- personalisation.ranking_attribution_window of that ranking.  uplift is
-- the arm's conversion rate over the control arm's, with its 95% interval
-- and p-value (uplift_test, docs/measurement.md).
CREATE VIEW personalisation.ranking_holdout AS
WITH session_outcomes AS (
    SELECT e.arm, count(o.order_id) AS orders, sum(o.total) AS revenue
      FROM personalisation.ranking_exposures e
      LEFT JOIN personalisation.orders o
             ON o.session_id = e.session_id AND o.occurred_at >= e.exposed_at
            AND o.occurred_at < e.exposed_at + personalisation.ranking_attribution_window()
     GROUP BY e.session_id, e.arm
), arms AS (
    SELECT a.arm,
           count(so.arm) AS sessions,
           count(so.arm) FILTER (WHERE so.orders > 0) AS converted_sessions,
           coalesce(sum(so.orders), 0) AS orders,
           coalesce(sum(so.revenue), 0) AS revenue
      FROM (VALUES ('personalised'), ('control')) a (arm)
      LEFT JOIN session_outcomes so USING (arm)
     GROUP BY a.arm
)
SELECT a.arm, a.sessions, a.converted_sessions,
       a.converted_sessions::float8 / NULLIF(a.sessions, 0) AS conversion_rate,
       a.orders, a.revenue,
       (a.converted_sessions::float8 / NULLIF(a.sessions, 0)) /
       NULLIF(c.converted_sessions::float8 / NULLIF(c.sessions, 0), 0) AS uplift,
       round(a.revenue / NULLIF(a.sessions, 0), 2) AS revenue_per_session,
       u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM arms a
  JOIN arms c ON c.arm = 'control'
  LEFT JOIN LATERAL personalisation.uplift_test(a.sessions, a.converted_sessions,
                                                c.sessions, c.converted_sessions) u ON a.arm <> 'control'
 ORDER BY a.arm DESC;

REVOKE ALL ON FUNCTION personalisation.affinity_fold(bytea, timestamptz, bytea, timestamptz, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation._affinity_entries(bytea, timestamptz, boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation._affinity_key(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rebuild_affinity(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.expire_session_affinity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.refresh_popularity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rank_products(text, text[], boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rank_categories(text, text[], boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rank_modules(text, jsonb, boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.holdout_arm(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation._holdout_arm(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation._catalogue_changed() FROM PUBLIC;
