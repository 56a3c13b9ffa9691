-- personalisation: core schema (catalogue, profiles, sessions, events, carts, orders).
-- Every object is schema-qualified; nothing is granted to PUBLIC.

\echo Use "CREATE EXTENSION personalisation" to load this file. \quit

REVOKE ALL ON SCHEMA personalisation FROM PUBLIC;

-- Catalogue: plain tables the shop fills with INSERT or COPY.  Parents may be
-- loaded after their children within one transaction (the foreign key is deferred).
CREATE TABLE personalisation.categories (
    category_id text PRIMARY KEY,
    parent_id   text REFERENCES personalisation.categories (category_id)
                     DEFERRABLE INITIALLY DEFERRED,
    name        text,
    CONSTRAINT categories_id_not_blank CHECK (btrim(category_id) <> ''),
    CONSTRAINT categories_not_own_parent CHECK (parent_id IS DISTINCT FROM category_id)
);
CREATE INDEX categories_parent_idx ON personalisation.categories (parent_id);

CREATE TABLE personalisation.products (
    product_id     text PRIMARY KEY,
    category_id    text REFERENCES personalisation.categories (category_id)
                        DEFERRABLE INITIALLY DEFERRED,
    name           text,
    price          numeric CHECK (price >= 0),
    brand          text,
    url            text,
    image_url      text,
    in_stock       boolean NOT NULL DEFAULT true,
    subscribable   boolean NOT NULL DEFAULT false,
    replenish_days int CHECK (replenish_days > 0),
    CONSTRAINT products_id_not_blank CHECK (btrim(product_id) <> '')
);
CREATE INDEX products_category_idx ON personalisation.products (category_id);

-- A profile is one person: anonymous until a login identifies it.
CREATE SEQUENCE personalisation.profile_id_seq;
CREATE TABLE personalisation.profiles (
    profile_id        bigint PRIMARY KEY DEFAULT nextval('personalisation.profile_id_seq'),
    created_at        timestamptz NOT NULL,
    customer_id       text UNIQUE,          -- NULL while anonymous
    email             text,
    email_consent     boolean NOT NULL DEFAULT false,
    email_consent_at  timestamptz           -- when email_consent last changed
);
ALTER SEQUENCE personalisation.profile_id_seq OWNED BY personalisation.profiles.profile_id;

-- The session directory: which profile a browser session belongs to right now.
-- It is keyed by session_id (the only key the shop has on a page view); the
-- per-person tables below are keyed by profile_id.
CREATE TABLE personalisation.sessions (
    session_id   text PRIMARY KEY,
    profile_id   bigint NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,     -- advanced at most once a minute
    -- push consent belongs to the browser that granted it, so it lives on the session
    push_consent    boolean NOT NULL DEFAULT false,
    push_consent_at timestamptz
) WITH (fillfactor = 70);  -- room for HOT updates: every event touches its session
CREATE INDEX sessions_profile_idx ON personalisation.sessions (profile_id);

-- Append-only event log, one partition per UTC day (see maintain_partitions).
CREATE TABLE personalisation.events (
    event_id    text,
    kind        text NOT NULL CHECK (kind IN ('page_view', 'cart_add', 'cart_remove', 'purchase',
                                          'subscription_start', 'subscription_stop')),
    occurred_at timestamptz NOT NULL,
    profile_id  bigint NOT NULL,
    session_id  text NOT NULL,
    category_id text,
    product_id  text,
    quantity    int,
    order_id    text,
    value       numeric
) PARTITION BY RANGE (occurred_at);
CREATE INDEX events_profile_idx ON personalisation.events (profile_id, occurred_at);

-- Idempotency keys: one row per event id the shop supplied, kept as long as the
-- events themselves.  A retried call finds its key here and changes nothing.
CREATE TABLE personalisation.event_keys (
    event_id    text PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);

-- The current cart of each profile, one row per product.
CREATE TABLE personalisation.cart_lines (
    profile_id  bigint NOT NULL,
    product_id  text NOT NULL,
    quantity    int NOT NULL CHECK (quantity > 0),
    session_id  text NOT NULL,
    added_at    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (profile_id, product_id)
);

-- One row per profile that has ever had a cart: its size and last activity.
CREATE TABLE personalisation.carts (
    profile_id       bigint PRIMARY KEY,
    session_id       text NOT NULL,
    line_count       int NOT NULL DEFAULT 0 CHECK (line_count >= 0),
    last_activity_at timestamptz NOT NULL
);

-- Orders and their lines, as recorded by track_purchase.
CREATE TABLE personalisation.orders (
    order_id    text PRIMARY KEY,
    profile_id  bigint NOT NULL,
    session_id  text NOT NULL,
    occurred_at timestamptz NOT NULL,
    line_count  int NOT NULL,
    total       numeric NOT NULL,
    refunded_at timestamptz         -- set once by track_refund; NULL while the order stands
);
CREATE INDEX orders_profile_idx ON personalisation.orders (profile_id, occurred_at);

CREATE TABLE personalisation.order_lines (
    order_id   text NOT NULL REFERENCES personalisation.orders (order_id) ON DELETE CASCADE,
    product_id text NOT NULL,
    quantity   int NOT NULL CHECK (quantity > 0),
    unit_price numeric NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX order_lines_product_idx ON personalisation.order_lines (product_id);

-- Every consent change ever recorded, in the order the shop reported them.
CREATE TABLE personalisation.consent_history (
    profile_id  bigint NOT NULL,
    change_id   bigint GENERATED ALWAYS AS IDENTITY,
    session_id  text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('push', 'email')),
    granted     boolean NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_id    text,
    PRIMARY KEY (profile_id, change_id)
);

-- Tracking: every call writes one event row in the caller's transaction and is
-- idempotent on its event_id (order_id for purchases).

CREATE FUNCTION personalisation.track_page_view(
    session_id text,
    category_id text DEFAULT NULL,
    product_id text DEFAULT NULL,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_page_view';

CREATE FUNCTION personalisation.track_cart_add(
    session_id text,
    product_id text,
    quantity int DEFAULT 1,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_cart_add';

CREATE FUNCTION personalisation.track_cart_remove(
    session_id text,
    product_id text,
    quantity int DEFAULT NULL,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_cart_remove';

CREATE FUNCTION personalisation.track_purchase(
    session_id text,
    order_id text,
    items jsonb,
    occurred_at timestamptz DEFAULT pg_catalog.now())
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_purchase';

CREATE FUNCTION personalisation.set_consent(
    session_id text,
    channel text,
    granted boolean,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'set_consent';

-- Identity resolution: identify() and the identify_on_login() trigger stitch a
-- browser session to a known customer at login; every merge of an anonymous
-- profile into a customer's is written to the merge ledger and can be undone
-- with unmerge().

-- The merge that moved an event onto its current profile; NULL for events
-- recorded on the profile they are on.  unmerge() moves exactly these back.
ALTER TABLE personalisation.events ADD COLUMN merge_id bigint;
CREATE INDEX events_merge_idx ON personalisation.events (merge_id) WHERE merge_id IS NOT NULL;

-- The merge ledger: one row per merge of an anonymous profile (from_profile_id)
-- into a customer's profile (profile_id), with what moved per merge step.
CREATE SEQUENCE personalisation.merge_id_seq;
CREATE TABLE personalisation.merges (
    profile_id      bigint NOT NULL,            -- the customer's profile merged into
    merge_id        bigint NOT NULL DEFAULT pg_catalog.nextval('personalisation.merge_id_seq'),
    from_profile_id bigint NOT NULL,            -- the anonymous profile merged
    customer_id     text NOT NULL,
    session_id      text NOT NULL,              -- the session whose login caused the merge
    reason          text NOT NULL,              -- 'identify', or the login trigger and its table
    merged_at       timestamptz NOT NULL,       -- when the login happened
    recorded_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    moved           jsonb NOT NULL DEFAULT '{}'::jsonb,  -- rows moved per merge step
    unmerged_at     timestamptz,                -- set by unmerge()
    restored        jsonb,                      -- rows put back per merge step
    PRIMARY KEY (profile_id, merge_id)
);
ALTER SEQUENCE personalisation.merge_id_seq OWNED BY personalisation.merges.merge_id;
CREATE INDEX merges_merge_id_idx ON personalisation.merges (merge_id);
CREATE INDEX merges_from_profile_idx ON personalisation.merges (from_profile_id);

-- What a merge step needs to undo its move exactly: one row per moved item
-- (a session id, an order id, a cart line's product id, ...), with the
-- values it had before the merge when the move changed them.
CREATE TABLE personalisation.merge_items (
    profile_id bigint NOT NULL,
    merge_id   bigint NOT NULL,
    step       text NOT NULL,
    item_key   text NOT NULL,
    detail     jsonb,
    PRIMARY KEY (profile_id, merge_id, step, item_key),
    FOREIGN KEY (profile_id, merge_id)
        REFERENCES personalisation.merges (profile_id, merge_id) ON DELETE CASCADE
);

CREATE FUNCTION personalisation.identify(
    session_id text,
    customer_id text,
    email text DEFAULT NULL,
    occurred_at timestamptz DEFAULT pg_catalog.now())
RETURNS bigint LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'identify';

CREATE FUNCTION personalisation.identify_on_login()
RETURNS trigger LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'identify_on_login';

CREATE FUNCTION personalisation.unmerge(
    merge_id bigint,
    occurred_at timestamptz DEFAULT pg_catalog.now())
RETURNS bigint LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'unmerge';

REVOKE ALL ON FUNCTION personalisation.identify(text, text, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.identify_on_login() FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.unmerge(bigint, timestamptz) FROM PUBLIC;

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
CREATE FUNCTION personalisation.affinity_entries(
    entries bytea, decayed_to timestamptz, session_scope boolean,
    at timestamptz DEFAULT pg_catalog.now(),
    OUT dimension text, OUT key_hash bigint, OUT score float8)
RETURNS SETOF record LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'affinity_entries';

-- The key a category, product or brand is scored under.
CREATE FUNCTION personalisation.affinity_key(dimension text, key text)
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

-- Ranking.
CREATE FUNCTION personalisation.rank_products(
    session_id text,
    candidates text[],
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (product_id text, score float8, "position" int, reason jsonb)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 100
AS 'MODULE_PATHNAME', 'rank_products';

CREATE FUNCTION personalisation.rank_categories(
    session_id text,
    candidates text[],
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (category_id text, score float8, "position" int, reason jsonb)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 20
AS 'MODULE_PATHNAME', 'rank_categories';

CREATE FUNCTION personalisation.rank_modules(
    session_id text,
    modules jsonb,
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (module text, category_id text, score float8, "position" int, reason jsonb)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 20
AS 'MODULE_PATHNAME', 'rank_modules';

-- The ranking holdout: 'personalised' or 'control', by a hash of the session
-- while the visitor is anonymous and of the customer's profile once identified.
CREATE FUNCTION personalisation.holdout_arm(session_id text)
RETURNS text LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'holdout_arm_session';

-- The same without a lookup: by the session while anonymous (customer_profile_id
-- NULL), by the customer's profile once identified.
CREATE FUNCTION personalisation.holdout_arm(session_id text, customer_profile_id bigint)
RETURNS text LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'holdout_arm_of';

-- The category tree and the facts of products tracked or ranked lately
-- (category, brand, stock, popularity) are cached by every backend: a change
-- makes them read again.
CREATE FUNCTION personalisation.catalogue_changed()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'catalogue_changed';

CREATE TRIGGER category_tree_changed
    AFTER INSERT OR UPDATE OR DELETE ON personalisation.categories
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation.catalogue_changed();
CREATE TRIGGER category_tree_truncated
    AFTER TRUNCATE ON personalisation.categories
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation.catalogue_changed();
CREATE TRIGGER product_facets_changed
    AFTER INSERT OR UPDATE OR DELETE ON personalisation.products
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation.catalogue_changed();
CREATE TRIGGER product_facets_truncated
    AFTER TRUNCATE ON personalisation.products
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation.catalogue_changed();
CREATE TRIGGER product_popularity_changed
    AFTER INSERT OR UPDATE OR DELETE ON personalisation.product_popularity
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation.catalogue_changed();
CREATE TRIGGER product_popularity_truncated
    AFTER TRUNCATE ON personalisation.product_popularity
    FOR EACH STATEMENT EXECUTE FUNCTION personalisation.catalogue_changed();
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
CREATE VIEW personalisation.affinity_dimensions AS
SELECT 'category'::text AS dimension, c.category_id AS key,
       personalisation.affinity_key('category', c.category_id) AS key_hash
  FROM personalisation.categories c
UNION ALL
SELECT 'product', p.product_id, personalisation.affinity_key('product', p.product_id)
  FROM personalisation.products p
UNION ALL
SELECT 'brand', b.brand, personalisation.affinity_key('brand', b.brand)
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
 CROSS JOIN LATERAL personalisation.affinity_entries(a.entries, a.decayed_to, a.session_id <> '') e
  LEFT JOIN personalisation.affinity_dimensions d
         ON d.dimension = e.dimension AND d.key_hash = e.key_hash;

-- Analysts: the ranking holdout's outcome.  Each session counts in the arm
-- rank_* gives it now (its customer's, once identified); it converted if it
-- placed an order.  uplift is the arm's conversion rate over the control arm's.
CREATE VIEW personalisation.ranking_holdout AS
WITH session_outcomes AS (
    SELECT personalisation.holdout_arm(s.session_id,
             CASE WHEN p.customer_id IS NOT NULL THEN s.profile_id END) AS arm,
           o.orders, o.revenue
      FROM personalisation.sessions s
      JOIN personalisation.profiles p ON p.profile_id = s.profile_id
      LEFT JOIN (SELECT session_id, count(*) AS orders, sum(total) AS revenue
                   FROM personalisation.orders GROUP BY session_id) o USING (session_id)
), arms AS (
    SELECT a.arm,
           count(so.arm) AS sessions,
           count(so.orders) AS converted_sessions,
           coalesce(sum(so.orders), 0) AS orders,
           coalesce(sum(so.revenue), 0) AS revenue
      FROM (VALUES ('personalised'), ('control')) a (arm)
      LEFT JOIN session_outcomes so USING (arm)
     GROUP BY a.arm
)
SELECT arm, sessions, converted_sessions,
       converted_sessions::float8 / NULLIF(sessions, 0) AS conversion_rate,
       orders, revenue,
       (converted_sessions::float8 / NULLIF(sessions, 0)) /
       NULLIF((SELECT c.converted_sessions::float8 / NULLIF(c.sessions, 0)
                 FROM arms c WHERE c.arm = 'control'), 0) AS uplift
  FROM arms
 ORDER BY arm DESC;

REVOKE ALL ON FUNCTION personalisation.affinity_fold(bytea, timestamptz, bytea, timestamptz, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.affinity_entries(bytea, timestamptz, boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.affinity_key(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rebuild_affinity(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.expire_session_affinity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.refresh_popularity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rank_products(text, text[], boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rank_categories(text, text[], boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rank_modules(text, jsonb, boolean, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.holdout_arm(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.holdout_arm(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.catalogue_changed() FROM PUBLIC;
-- Complementarity ("customers who bought X also bought Y"): order counts per
-- product and per unordered product pair, kept current by every purchase and
-- refund in its own transaction, rebuilt in bulk by rebuild_complementarity().
-- See docs/recommendations.md for the measures and their formulas.

-- The window's expiry finds the orders leaving it by time.
CREATE INDEX orders_occurred_idx ON personalisation.orders (occurred_at);

-- What the counts cover: the orders placed since counted_since (the start of
-- the window) that are not refunded, with pairs taken among at most
-- basket_cap products of each order.  Between pause_complementarity() and
-- the next rebuild, purchases and refunds leave the counts alone.  Counting
-- holds ROW EXCLUSIVE on this table; rebuild, maintenance and pause hold
-- EXCLUSIVE, so that the row never changes under a purchase being counted.
CREATE TABLE personalisation.complement_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    counted_since timestamptz NOT NULL,
    basket_cap    int NOT NULL CHECK (basket_cap >= 2),
    paused        boolean NOT NULL DEFAULT false,
    rebuilt_at    timestamptz NOT NULL
);

-- Counted orders, split into stripes (one per backend slot modulo 8) so that
-- concurrent purchases do not queue on one row; maintenance folds the
-- stripes back into stripe 0.  The count is the sum over the stripes.  Pages
-- are kept half empty so that counter updates stay HOT.
CREATE TABLE personalisation.complement_totals (
    stripe smallint PRIMARY KEY,
    orders bigint NOT NULL
) WITH (fillfactor = 50);

-- Counted orders containing each product, striped like complement_totals.
CREATE TABLE personalisation.complement_products (
    product_id text COLLATE "C" NOT NULL,
    stripe     smallint NOT NULL,
    orders     bigint NOT NULL,
    PRIMARY KEY (product_id, stripe)
) WITH (fillfactor = 50);

-- Counted orders containing both products of an unordered pair, stored once
-- with product_a < product_b in byte order.  The two co_orders indexes serve
-- also_bought: a product's partners in descending co_orders, from either side
-- (the partner is an included column: ties are ranked by the reader).
CREATE TABLE personalisation.complement_pairs (
    product_a text COLLATE "C" NOT NULL,
    product_b text COLLATE "C" NOT NULL,
    co_orders bigint NOT NULL,
    PRIMARY KEY (product_a, product_b),
    CONSTRAINT complement_pairs_ordered CHECK (product_a < product_b)
);
CREATE INDEX complement_pairs_a_idx
    ON personalisation.complement_pairs (product_a, co_orders DESC) INCLUDE (product_b);
CREATE INDEX complement_pairs_b_idx
    ON personalisation.complement_pairs (product_b, co_orders DESC) INCLUDE (product_a);

-- Counted orders per product, the stripes summed.
CREATE VIEW personalisation.complement_product_orders AS
SELECT product_id, pg_catalog.sum(orders)::bigint AS orders
  FROM personalisation.complement_products
 GROUP BY product_id
HAVING pg_catalog.sum(orders) <> 0;

CREATE FUNCTION personalisation.track_refund(
    order_id text,
    occurred_at timestamptz DEFAULT pg_catalog.now())
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_refund';

CREATE FUNCTION personalisation.also_bought(
    product_id text,
    n int DEFAULT 10)
RETURNS TABLE (product_id text, co_orders bigint, confidence float8, lift float8, jaccard float8)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 10
AS 'MODULE_PATHNAME', 'also_bought';

CREATE FUNCTION personalisation.recommend_for_cart(
    session_id text,
    n int DEFAULT 10)
RETURNS TABLE (product_id text, score float8, because_of text, co_orders bigint, lift float8)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 10
AS 'MODULE_PATHNAME', 'recommend_for_cart';

CREATE FUNCTION personalisation.rebuild_complementarity(
    now timestamptz DEFAULT pg_catalog.now(),
    OUT orders bigint, OUT products bigint, OUT pairs bigint)
RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'rebuild_complementarity';

CREATE FUNCTION personalisation.maintain_complementarity(
    now timestamptz DEFAULT pg_catalog.now(),
    OUT expired_orders bigint, OUT folded_rows bigint)
RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'maintain_complementarity';

CREATE FUNCTION personalisation.pause_complementarity()
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pause_complementarity';

REVOKE ALL ON FUNCTION personalisation.track_refund(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.also_bought(text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.recommend_for_cart(text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rebuild_complementarity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.maintain_complementarity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.pause_complementarity() FROM PUBLIC;

-- The counts start from the orders already recorded, with the configured
-- window and basket cap.
SELECT personalisation.rebuild_complementarity();
-- Subscriptions: which products each profile receives on a schedule, as
-- track_subscription_start and track_subscription_stop record them.  The
-- post-purchase journeys offer subscriptions and stop offering a product
-- once it is subscribed; the analyst views measure uptake and retention.

-- One row per subscription: a profile may subscribe to a product again after
-- stopping, but holds at most one active subscription per product.
CREATE TABLE personalisation.subscriptions (
    profile_id bigint NOT NULL,
    product_id text NOT NULL,
    started_at timestamptz NOT NULL,
    stopped_at timestamptz,            -- NULL while active
    session_id text NOT NULL,          -- the session that started it
    PRIMARY KEY (profile_id, product_id, started_at),
    CONSTRAINT subscriptions_stop_follows_start CHECK (stopped_at >= started_at)
);
CREATE UNIQUE INDEX subscriptions_one_active ON personalisation.subscriptions (profile_id, product_id)
    WHERE stopped_at IS NULL;

CREATE FUNCTION personalisation.track_subscription_start(
    session_id text,
    product_id text,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_subscription_start';

CREATE FUNCTION personalisation.track_subscription_stop(
    session_id text,
    product_id text,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_subscription_stop';

REVOKE ALL ON FUNCTION personalisation.track_subscription_start(text, text, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.track_subscription_stop(text, text, timestamptz, text) FROM PUBLIC;
-- Outbound queue: every message a journey sends is one row here, written once
-- per (run, step), claimed by delivery workers under a lease, acknowledged,
-- retried with backoff, dead-lettered, or suppressed when consent is gone.

CREATE SEQUENCE personalisation.outbox_message_id_seq;

CREATE TABLE personalisation.outbox (
    message_id   bigint NOT NULL DEFAULT nextval('personalisation.outbox_message_id_seq'),
    profile_id   bigint NOT NULL,
    run_id       bigint NOT NULL,
    step         int NOT NULL,
    journey      text NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('push', 'email')),
    template     text NOT NULL,
    session_id   text NOT NULL,          -- the browser a push goes to
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'claimed', 'delivered', 'dead', 'suppressed', 'cancelled')),
    -- true while a worker may still be handed the message; claiming and
    -- re-claiming leave it (and so every index) untouched, so they are HOT updates
    queued       boolean GENERATED ALWAYS AS (status IN ('pending', 'claimed')) STORED,
    attempts     int NOT NULL DEFAULT 0,  -- claims so far
    available_at timestamptz NOT NULL,    -- not handed out before this
    created_at   timestamptz NOT NULL,
    claimed_by   text,
    lease_until  timestamptz,             -- a claim lapses at this instant
    finished_at  timestamptz,             -- delivered, dead-lettered, suppressed or cancelled
    reason       text,                    -- why suppressed or cancelled
    last_error   text,                    -- the last failure a worker reported
    PRIMARY KEY (message_id, profile_id),
    CONSTRAINT outbox_once_per_step UNIQUE (profile_id, run_id, step)
) WITH (fillfactor = 80);
ALTER SEQUENCE personalisation.outbox_message_id_seq OWNED BY personalisation.outbox.message_id;
CREATE INDEX outbox_queue_idx ON personalisation.outbox (available_at) WHERE queued;

CREATE FUNCTION personalisation.claim_messages(
    consumer text,
    max_messages int DEFAULT 100,
    lease interval DEFAULT '5 minutes',
    now timestamptz DEFAULT pg_catalog.now())
RETURNS SETOF personalisation.outbox LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'claim_messages';

CREATE FUNCTION personalisation.ack_message(
    message_id bigint,
    now timestamptz DEFAULT pg_catalog.now())
RETURNS boolean LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ack_message';

CREATE FUNCTION personalisation.ack_messages(
    message_ids bigint[],
    now timestamptz DEFAULT pg_catalog.now())
RETURNS int LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ack_messages';

CREATE FUNCTION personalisation.fail_message(
    message_id bigint,
    error text,
    now timestamptz DEFAULT pg_catalog.now())
RETURNS text LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'fail_message';
-- Journeys (message sequences) as data: the journey, its ordered steps, the
-- runs (one per abandoned cart episode, per order, or per subscribable
-- product bought), what each step did, the coupons the incentive steps
-- issued, and the analyst report.  run_due() is the clock.

CREATE TABLE personalisation.journeys (
    journey              text PRIMARY KEY,
    -- what starts a run: an abandoned cart (one run per cart episode), a
    -- purchase (one run per order; the profile's later orders join it while
    -- it is active), or a purchase of subscribable products (one run per
    -- such product)
    trigger              text NOT NULL
                         CHECK (trigger IN ('cart_abandoned', 'purchase', 'subscribable_purchase')),
    enabled              boolean NOT NULL DEFAULT true,
    exit_on_purchase     boolean NOT NULL DEFAULT true,   -- a purchase by the profile ends a run
    exit_on_cart_emptied boolean NOT NULL DEFAULT true,   -- an emptied cart ends a run
    exit_on_refund       boolean NOT NULL DEFAULT true,   -- a purchase's run ends once none of its orders stands
    exit_on_subscribed   boolean NOT NULL DEFAULT true,   -- a product's run ends when the profile subscribes to it
    send_within          interval CHECK (send_within > interval '0'),  -- no message later than this after the run starts
    description          text,
    CONSTRAINT journeys_name_not_blank CHECK (btrim(journey) <> '')
);

-- One row per step, done in step order.  A step is due delay after the
-- run's anchor (the cart's last activity, or the order), never before the
-- cart is declared abandoned; with before_runout, a run about one product
-- is due that long before the product runs out (never before delay, and
-- early enough to go out within the journey's send_within).  Conditions:
-- max_lateness (a step reached later than this after it was due is skipped
-- as pointless), min_cart_value and min_recommendations.
CREATE TABLE personalisation.journey_steps (
    journey         text NOT NULL REFERENCES personalisation.journeys (journey),
    step            int NOT NULL CHECK (step > 0),
    name            text NOT NULL,
    delay           interval NOT NULL CHECK (delay >= interval '0'),
    channel         text NOT NULL CHECK (channel IN ('push', 'email')),
    template        text NOT NULL,   -- what the delivery worker renders
    blocks          text[] NOT NULL DEFAULT '{items}'
                    CHECK (blocks <@ ARRAY['items', 'social_proof', 'incentive', 'recommendations',
                                           'subscription_offer']),
    max_lateness    interval NOT NULL DEFAULT '12 hours' CHECK (max_lateness >= interval '0'),
    min_cart_value  numeric CHECK (min_cart_value >= 0),
    incentive_kind  text CHECK (incentive_kind IN ('percent', 'amount', 'free_shipping')),
    incentive_value numeric CHECK (incentive_value >= 0),
    enabled         boolean NOT NULL DEFAULT true,
    before_runout   interval CHECK (before_runout >= interval '0'),
    max_recommendations int NOT NULL DEFAULT 4 CHECK (max_recommendations BETWEEN 1 AND 50),
    min_recommendations int,
    PRIMARY KEY (journey, step),
    CONSTRAINT journey_steps_min_recommendations
        CHECK (min_recommendations BETWEEN 1 AND max_recommendations),
    CONSTRAINT journey_steps_incentive_described
        CHECK (('incentive' = ANY (blocks)) = (incentive_kind IS NOT NULL AND incentive_value IS NOT NULL))
);

-- One run per abandoned cart episode, per order (order_id), or per
-- subscribable product of an order (order_id and product_id).  Delays
-- count from anchor_at, the cart's last activity or the order; activity on
-- the cart moves a cart run's anchor and clears declared_at until the cart
-- is idle again (the clock restarts, the run goes on).  next_due_at is when
-- run_due next looks at the run, and the instant the next step's lateness
-- is measured from.
CREATE SEQUENCE personalisation.journey_run_id_seq;
CREATE TABLE personalisation.journey_runs (
    profile_id        bigint NOT NULL,
    run_id            bigint NOT NULL DEFAULT nextval('personalisation.journey_run_id_seq'),
    journey           text NOT NULL REFERENCES personalisation.journeys (journey),
    arm               text NOT NULL CHECK (arm IN ('treatment', 'holdout')),
    session_id        text NOT NULL,         -- the browser the cart was last used in, or the order placed in
    origin_profile_id bigint NOT NULL,       -- whose cart or order it was (merges move profile_id)
    episode_at        timestamptz NOT NULL,  -- the cart activity, or the order, this run answers
    abandoned_at      timestamptz,           -- when the cart was first declared abandoned (cart runs)
    anchor_at         timestamptz NOT NULL,  -- delays count from here
    declared_at       timestamptz,           -- NULL while the cart is active again
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'ended')),
    end_reason        text,                  -- purchased, cart_emptied, consent_withdrawn, merged
    ended_at          timestamptz,
    next_step         int NOT NULL,
    next_due_at       timestamptz,
    wait_reason       text,                  -- frequency_cap or quiet_hours while postponed
    merge_trail       bigint[] NOT NULL DEFAULT '{}',  -- profiles it was merged away from, oldest first
    order_id          text,                  -- the order that started the run (runs a purchase started)
    product_id        text,                  -- the product a run about one product offers
    runs_out_at       timestamptz,           -- when the quantity bought of that product runs out
    PRIMARY KEY (profile_id, run_id),
    CONSTRAINT journey_runs_end_explained CHECK ((status = 'ended') = (end_reason IS NOT NULL)),
    CONSTRAINT journey_runs_started CHECK ((order_id IS NULL) = (abandoned_at IS NOT NULL))
);
ALTER SEQUENCE personalisation.journey_run_id_seq OWNED BY personalisation.journey_runs.run_id;
CREATE UNIQUE INDEX journey_runs_one_active ON personalisation.journey_runs (profile_id, journey, product_id)
    NULLS NOT DISTINCT WHERE status = 'active';
CREATE UNIQUE INDEX journey_runs_one_per_episode
    ON personalisation.journey_runs (profile_id, origin_profile_id, journey, episode_at, product_id)
    NULLS NOT DISTINCT;
CREATE INDEX journey_runs_due ON personalisation.journey_runs (next_due_at, profile_id, run_id)
    WHERE status = 'active';
CREATE INDEX journey_runs_idle ON personalisation.journey_runs (anchor_at)
    WHERE status = 'active' AND declared_at IS NULL;

-- What each step of each run did: sent (message_id names the outbox row),
-- held (holdout arm: payload is what would have been sent) or skipped (reason).
CREATE TABLE personalisation.journey_run_steps (
    profile_id bigint NOT NULL,
    run_id     bigint NOT NULL,
    step       int NOT NULL,
    journey    text NOT NULL,
    arm        text NOT NULL,
    channel    text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('sent', 'held', 'skipped')),
    reason     text,
    due_at     timestamptz NOT NULL,
    done_at    timestamptz NOT NULL,
    message_id bigint,
    payload    jsonb,
    PRIMARY KEY (profile_id, run_id, step),
    CONSTRAINT journey_run_steps_skip_explained CHECK ((outcome = 'skipped') = (reason IS NOT NULL))
);

-- Coupons the incentive steps issued; the shop's checkout looks codes up here.
CREATE SEQUENCE personalisation.coupon_seq;
CREATE TABLE personalisation.coupons (
    profile_id bigint NOT NULL,
    code       text NOT NULL,
    run_id     bigint NOT NULL,
    step       int NOT NULL,
    kind       text NOT NULL,
    value      numeric NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (profile_id, code)
);
CREATE INDEX coupons_code_idx ON personalisation.coupons (code);

-- Abandonment scans idle carts by last activity; social proof counts product page views.
CREATE INDEX carts_idle_idx ON personalisation.carts (last_activity_at) WHERE line_count > 0;
CREATE INDEX events_product_views_idx ON personalisation.events (product_id, occurred_at)
    WHERE kind = 'page_view' AND product_id IS NOT NULL;

-- The standing order lines a run that a purchase started is about: the
-- profile's orders placed at or after the run's start (an order placed
-- while the run is active joins it) and not refunded, and of those only the
-- run's product for a run about one product.
CREATE VIEW personalisation.journey_run_purchases AS
SELECT r.profile_id, r.run_id, o.order_id, o.occurred_at AS ordered_at,
       l.product_id, l.quantity, l.unit_price
  FROM personalisation.journey_runs r
  JOIN personalisation.orders o
    ON o.profile_id = r.profile_id AND o.occurred_at >= r.anchor_at AND o.refunded_at IS NULL
  JOIN personalisation.order_lines l ON l.order_id = o.order_id
 WHERE r.order_id IS NOT NULL AND (r.product_id IS NULL OR l.product_id = r.product_id);

-- The exit rules and consent of every run, as run_due and claim_messages see
-- them: exit_reason is why the run's messages must stop (NULL: they may go
-- on), and each channel's refusal is why it may not be used (NULL: it may).
-- A run ended by a consent withdrawal keeps its messages on channels still
-- allowed: the refusals speak for the withdrawn ones.  A run's own order
-- never counts as a purchase ending it.
CREATE VIEW personalisation.journey_run_checks AS
SELECT r.profile_id, r.run_id,
       CASE WHEN r.status = 'ended' AND r.end_reason <> 'consent_withdrawn' THEN r.end_reason
            WHEN j.exit_on_purchase AND EXISTS (
                     SELECT FROM personalisation.orders o
                      WHERE o.profile_id = r.profile_id AND o.occurred_at >= r.episode_at
                        AND o.order_id IS DISTINCT FROM r.order_id)
                 THEN 'purchased'
            WHEN j.exit_on_cart_emptied AND NOT EXISTS (
                     SELECT FROM personalisation.carts c
                      WHERE c.profile_id = r.profile_id AND c.line_count > 0)
                 THEN 'cart_emptied'
            WHEN j.exit_on_subscribed AND r.product_id IS NOT NULL AND EXISTS (
                     SELECT FROM personalisation.subscriptions s
                      WHERE s.profile_id = r.profile_id AND s.product_id = r.product_id
                        AND s.stopped_at IS NULL)
                 THEN 'subscribed'
            WHEN j.exit_on_refund AND r.order_id IS NOT NULL AND NOT EXISTS (
                     SELECT FROM personalisation.journey_run_purchases b
                      WHERE b.profile_id = r.profile_id AND b.run_id = r.run_id)
                 THEN 'refunded'
       END AS exit_reason,
       CASE WHEN s.push_consent THEN NULL
            WHEN s.push_consent_at IS NOT NULL THEN 'push_consent_withdrawn'
            ELSE 'no_push_consent'
       END AS push_refusal,
       CASE WHEN p.email_consent AND p.email IS NOT NULL THEN NULL
            WHEN p.email_consent_at IS NOT NULL AND NOT p.email_consent THEN 'email_consent_withdrawn'
            WHEN p.email IS NULL THEN 'no_email_address'
            ELSE 'no_email_consent'
       END AS email_refusal
  FROM personalisation.journey_runs r
  JOIN personalisation.journeys j ON j.journey = r.journey
  LEFT JOIN personalisation.sessions s ON s.session_id = r.session_id
  LEFT JOIN personalisation.profiles p ON p.profile_id = r.profile_id;

-- The default abandoned-cart journey.
INSERT INTO personalisation.journeys (journey, trigger, description) VALUES
    ('abandoned_cart', 'cart_abandoned',
     'Push at once, then emails at 60 minutes, 24 hours (social proof) and 72 hours (incentive).');
INSERT INTO personalisation.journey_steps
    (journey, step, name, delay, channel, template, blocks, max_lateness, incentive_kind, incentive_value)
VALUES
    ('abandoned_cart', 1, 'push', '0', 'push', 'cart_push',
     '{items}', '1 hour', NULL, NULL),
    ('abandoned_cart', 2, 'items_email', '60 minutes', 'email', 'cart_items',
     '{items,recommendations}', '6 hours', NULL, NULL),
    ('abandoned_cart', 3, 'social_proof_email', '24 hours', 'email', 'cart_social_proof',
     '{items,social_proof,recommendations}', '12 hours', NULL, NULL),
    ('abandoned_cart', 4, 'incentive_email', '72 hours', 'email', 'cart_incentive',
     '{items,incentive,recommendations}', '24 hours', 'percent', 10);

CREATE FUNCTION personalisation.run_due(now timestamptz DEFAULT pg_catalog.now())
RETURNS int LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'run_due';

CREATE FUNCTION personalisation.track_session_end(
    session_id text,
    occurred_at timestamptz DEFAULT pg_catalog.now())
RETURNS boolean LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_session_end';

CREATE FUNCTION personalisation.attribution_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'attribution_window';

-- Per abandoned-cart journey, arm and step (step NULL: the arm as a whole):
-- carts abandoned, messages sent, held (holdout) and delivered, carts
-- recovered and their revenue, and the recovery rate.  A cart is recovered
-- when its profile orders within personalisation.attribution_window after
-- abandonment; the first such order is the recovered revenue, credited to
-- the last step sent (or held) before it.  No personal data.  The
-- post-purchase journeys have their own views (post_purchase.sql).
CREATE VIEW personalisation.journey_report AS
WITH runs AS (
    SELECT r.journey, r.arm, r.profile_id, r.run_id,
           rec.order_id IS NOT NULL AS recovered, rec.total AS revenue,
           (SELECT s.step FROM personalisation.journey_run_steps s
             WHERE s.profile_id = r.profile_id AND s.run_id = r.run_id
               AND s.outcome IN ('sent', 'held') AND s.done_at <= rec.occurred_at
             ORDER BY s.done_at DESC, s.step DESC LIMIT 1) AS credited_step
      FROM personalisation.journey_runs r
      JOIN personalisation.journeys j ON j.journey = r.journey AND j.trigger = 'cart_abandoned'
      LEFT JOIN LATERAL (
           SELECT o.order_id, o.total, o.occurred_at FROM personalisation.orders o
            WHERE o.profile_id = r.profile_id
              AND o.occurred_at >= r.abandoned_at
              AND o.occurred_at < r.abandoned_at + personalisation.attribution_window()
            ORDER BY o.occurred_at LIMIT 1) rec ON true
), arms AS (
    SELECT journey, arm, count(*) AS carts_abandoned,
           count(*) FILTER (WHERE recovered) AS carts_recovered,
           coalesce(sum(revenue), 0) AS recovered_revenue
      FROM runs GROUP BY journey, arm
), step_outcomes AS (
    SELECT s.journey, s.arm, s.step,
           count(*) FILTER (WHERE s.outcome = 'sent') AS messages_sent,
           count(*) FILTER (WHERE s.outcome = 'held') AS messages_held,
           count(*) FILTER (WHERE o.status = 'delivered') AS messages_delivered,
           count(*) FILTER (WHERE s.outcome = 'skipped') AS steps_skipped
      FROM personalisation.journey_run_steps s
      LEFT JOIN personalisation.outbox o
             ON o.message_id = s.message_id AND o.profile_id = s.profile_id
     GROUP BY s.journey, s.arm, s.step
), credited AS (
    SELECT journey, arm, credited_step AS step, count(*) AS carts_recovered,
           sum(revenue) AS recovered_revenue
      FROM runs WHERE recovered AND credited_step IS NOT NULL
     GROUP BY journey, arm, credited_step
), rows AS (
    SELECT a.journey, a.arm, NULL::int AS step, NULL::text AS template, a.carts_abandoned,
           coalesce(sum(so.messages_sent), 0)::bigint AS messages_sent,
           coalesce(sum(so.messages_held), 0)::bigint AS messages_held,
           coalesce(sum(so.messages_delivered), 0)::bigint AS messages_delivered,
           coalesce(sum(so.steps_skipped), 0)::bigint AS steps_skipped,
           a.carts_recovered, a.recovered_revenue
      FROM arms a
      LEFT JOIN step_outcomes so ON so.journey = a.journey AND so.arm = a.arm
     GROUP BY a.journey, a.arm, a.carts_abandoned, a.carts_recovered, a.recovered_revenue
    UNION ALL
    SELECT a.journey, a.arm, js.step, js.template, a.carts_abandoned,
           coalesce(so.messages_sent, 0), coalesce(so.messages_held, 0),
           coalesce(so.messages_delivered, 0), coalesce(so.steps_skipped, 0),
           coalesce(c.carts_recovered, 0), coalesce(c.recovered_revenue, 0)
      FROM arms a
      JOIN personalisation.journey_steps js ON js.journey = a.journey
      LEFT JOIN step_outcomes so ON so.journey = a.journey AND so.arm = a.arm AND so.step = js.step
      LEFT JOIN credited c ON c.journey = a.journey AND c.arm = a.arm AND c.step = js.step
)
SELECT journey, arm, step, template, carts_abandoned, messages_sent, messages_held,
       messages_delivered, steps_skipped, carts_recovered, recovered_revenue,
       round(carts_recovered::numeric / carts_abandoned, 4) AS recovery_rate
  FROM rows;
-- Post-purchase journeys: the default cross-sell sequence and subscription
-- offer (rows the shop can change), and the analyst views that measure them.
-- An order enrols its buyer in track_purchase (post_purchase.c); run_due
-- does the steps like any other journey's.

-- Cross-sell: one run per order (later orders join it while it runs), two
-- emails with complements of what was bought.  A purchase does not end it; a
-- refund of every order it covers does.
INSERT INTO personalisation.journeys
    (journey, trigger, exit_on_purchase, exit_on_cart_emptied, exit_on_refund, exit_on_subscribed,
     send_within, description)
VALUES
    ('post_purchase', 'purchase', false, false, true, false, '30 days',
     'Cross-sell emails 3 and 14 days after an order, with complements of what was bought.'),
    ('subscription_offer', 'subscribable_purchase', false, false, true, true, '30 days',
     'One subscription offer per subscribable product bought, before it runs out.');
INSERT INTO personalisation.journey_steps
    (journey, step, name, delay, channel, template, blocks, max_lateness, before_runout,
     max_recommendations, min_recommendations)
VALUES
    ('post_purchase', 1, 'cross_sell_email', '3 days', 'email', 'post_purchase_cross_sell',
     '{items,recommendations}', '1 day', NULL, 4, 1),
    ('post_purchase', 2, 'cross_sell_reminder', '14 days', 'email', 'post_purchase_cross_sell',
     '{items,recommendations}', '1 day', NULL, 4, 1),
    ('subscription_offer', 1, 'subscription_offer_email', '1 day', 'email', 'subscription_offer',
     '{items,subscription_offer}', '1 day', '5 days', 4, NULL);

-- Order value after cross-sell messages: per post-purchase journey, the
-- standing orders (not refunded) its profiles placed within
-- personalisation.attribution_window after a cross-sell message (a step with
-- recommendations) was sent (treatment) or held (holdout), each order
-- counted once, against every profile's first standing order
-- (first_orders).  No personal data.
CREATE VIEW personalisation.post_purchase_order_value AS
WITH standing AS (
    SELECT o.order_id, o.profile_id, o.occurred_at, o.total
      FROM personalisation.orders o WHERE o.refunded_at IS NULL
), first_orders AS (
    SELECT DISTINCT ON (profile_id) order_id, total
      FROM standing ORDER BY profile_id, occurred_at, order_id
), cross_sell AS (
    SELECT s.journey, s.arm, s.profile_id, s.done_at
      FROM personalisation.journey_run_steps s
      JOIN personalisation.journeys j ON j.journey = s.journey AND j.trigger = 'purchase'
      JOIN personalisation.journey_steps js
        ON js.journey = s.journey AND js.step = s.step AND 'recommendations' = ANY (js.blocks)
     WHERE s.outcome IN ('sent', 'held')
), followed AS (
    SELECT DISTINCT c.journey, c.arm, o.order_id, o.total
      FROM cross_sell c
      JOIN standing o ON o.profile_id = c.profile_id AND o.occurred_at > c.done_at
                     AND o.occurred_at < c.done_at + personalisation.attribution_window()
), messages AS (
    SELECT journey, arm, count(*) AS messages FROM cross_sell GROUP BY journey, arm
)
SELECT NULL::text AS journey, 'first_orders'::text AS cohort, NULL::bigint AS messages,
       count(*) AS orders, coalesce(sum(total), 0) AS order_value,
       round(avg(total), 2) AS average_order_value
  FROM first_orders
UNION ALL
SELECT m.journey, m.arm, m.messages, count(f.order_id), coalesce(sum(f.total), 0), round(avg(f.total), 2)
  FROM messages m
  LEFT JOIN followed f ON f.journey = m.journey AND f.arm = m.arm
 GROUP BY m.journey, m.arm, m.messages;

-- Every profile with a standing order: its first one, its first subscription
-- start, and its arm in the subscription-offer journeys (that of its first
-- offer run; not_offered without one).  The base of the two views below.
CREATE VIEW personalisation.subscription_customers AS
SELECT c.profile_id, c.first_order_at,
       (SELECT min(s.started_at) FROM personalisation.subscriptions s
         WHERE s.profile_id = c.profile_id) AS first_subscribed_at,
       coalesce((SELECT r.arm FROM personalisation.journey_runs r
                   JOIN personalisation.journeys j ON j.journey = r.journey
                  WHERE r.profile_id = c.profile_id AND j.trigger = 'subscribable_purchase'
                  ORDER BY r.run_id LIMIT 1), 'not_offered') AS offer_arm
  FROM (SELECT o.profile_id, min(o.occurred_at) AS first_order_at
          FROM personalisation.orders o WHERE o.refunded_at IS NULL
         GROUP BY o.profile_id) c;

-- Subscription uptake per offer arm (arm NULL: everyone): of the customers
-- whose first standing order is at least 30 days old, how many first
-- subscribed within 30 days of it (or before it), how many later, how many
-- never, and the two uptake rates.  No personal data.
CREATE VIEW personalisation.subscription_uptake AS
SELECT offer_arm AS arm, count(*) AS customers,
       count(*) FILTER (WHERE first_subscribed_at <= first_order_at + interval '30 days')
           AS subscribed_within_30_days,
       count(*) FILTER (WHERE first_subscribed_at > first_order_at + interval '30 days')
           AS subscribed_later,
       count(*) FILTER (WHERE first_subscribed_at IS NULL) AS never_subscribed,
       round(count(*) FILTER (WHERE first_subscribed_at <= first_order_at + interval '30 days')::numeric
             / count(*), 4) AS uptake_within_30_days,
       round(count(*) FILTER (WHERE first_subscribed_at > first_order_at + interval '30 days')::numeric
             / count(*), 4) AS uptake_later
  FROM personalisation.subscription_customers
 WHERE first_order_at + interval '30 days' <= pg_catalog.now()
 GROUP BY ROLLUP (offer_arm);

-- 12-month retention by subscription timing: of the customers whose first
-- standing order is at least 365 days old, grouped by when they first
-- subscribed (within_30_days of the first order or before it,
-- after_30_days but within the 365, or never within the 365), how many were
-- still customers in the retention window, the 30 days up to the first
-- order's 365th day: a standing order placed in (first + 335 days,
-- first + 365 days], or a subscription active at some point of it.
-- No personal data.
CREATE VIEW personalisation.subscription_retention AS
SELECT timing AS subscription_timing, count(*) AS customers,
       count(*) FILTER (WHERE retained) AS retained,
       round(count(*) FILTER (WHERE retained)::numeric / count(*), 4) AS retention_rate
  FROM (SELECT CASE WHEN c.first_subscribed_at <= c.first_order_at + interval '30 days' THEN 'within_30_days'
                    WHEN c.first_subscribed_at <= c.first_order_at + interval '365 days' THEN 'after_30_days'
                    ELSE 'never' END AS timing,
               EXISTS (SELECT FROM personalisation.orders o
                        WHERE o.profile_id = c.profile_id AND o.refunded_at IS NULL
                          AND o.occurred_at > c.first_order_at + interval '335 days'
                          AND o.occurred_at <= c.first_order_at + interval '365 days')
               OR EXISTS (SELECT FROM personalisation.subscriptions s
                           WHERE s.profile_id = c.profile_id
                             AND s.started_at <= c.first_order_at + interval '365 days'
                             AND (s.stopped_at IS NULL
                                  OR s.stopped_at > c.first_order_at + interval '335 days')) AS retained
          FROM personalisation.subscription_customers c
         WHERE c.first_order_at + interval '365 days' <= pg_catalog.now()) t
 GROUP BY timing;

-- Operations: partition maintenance, pg_cron registration, load checks.

CREATE FUNCTION personalisation.maintain_partitions(
    now timestamptz DEFAULT pg_catalog.now(),
    OUT created int, OUT dropped int, OUT expired_keys bigint,
    OUT expired_sessions bigint, OUT forgotten_profiles bigint)
RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'maintain_partitions';

CREATE FUNCTION personalisation.schedule_jobs(
    OUT job_name text, OUT schedule text, OUT command text, OUT job_id bigint)
RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'schedule_jobs';

CREATE FUNCTION personalisation.preloaded()
RETURNS boolean LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'preloaded';

-- The day partitions around now exist from the start.
SELECT personalisation.maintain_partitions();

DO $$
BEGIN
    IF NOT personalisation.preloaded() THEN
        RAISE WARNING 'personalisation is not loaded through shared_preload_libraries'
            USING DETAIL = 'Tracking and ranking work; the background worker does not run.',
                  HINT = 'Add personalisation to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END
$$;

-- The background worker: observable from SQL, started on demand.

CREATE FUNCTION personalisation.worker_status(
    OUT database_id oid, OUT pid int, OUT started_at timestamptz, OUT last_run_at timestamptz,
    OUT runs bigint, OUT actions bigint, OUT errors bigint, OUT last_error_at timestamptz,
    OUT last_error text)
RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'worker_status';

CREATE FUNCTION personalisation.start_worker()
RETURNS boolean LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'start_worker';

-- A database gets its worker as soon as the extension is created.
SELECT personalisation.start_worker() WHERE personalisation.preloaded();
-- Privacy: erasing and exporting everything held about a customer, and the
-- pseudonymous reporting views analysts read instead of the tables.
-- Sessions idle past personalisation.event_retention expire with the event
-- partitions (maintain_partitions).

CREATE FUNCTION personalisation.forget_customer(customer_id text)
RETURNS jsonb LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'forget_customer';

CREATE FUNCTION personalisation.export_customer(customer_id text)
RETURNS jsonb LANGUAGE c STABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'export_customer';

-- The installation's secret for pseudonyms, readable by the owner only.
-- Replacing it changes every pseudonym (analysts can no longer link rows
-- across the change); a dump and restore makes a new one unless this row is
-- copied over.
CREATE TABLE personalisation.pseudonym_key (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key        bytea NOT NULL CHECK (pg_catalog.octet_length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- 32 bytes drawn from two random UUIDs (244 random bits from the server's strong random source)
INSERT INTO personalisation.pseudonym_key (key)
VALUES (pg_catalog.sha256(pg_catalog.convert_to(
            pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, 'UTF8')));

-- HMAC-SHA256 of value under key, 16 bytes in hex.  It takes the key as an
-- argument, so calling it reveals nothing: only the views, which read the
-- key with the owner's rights, produce the installation's pseudonyms.
CREATE FUNCTION personalisation.pseudonym(key bytea, value text)
RETURNS text LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pseudonym';

-- Analysts' views: no customer id, email, session id or order id in clear.
-- A person is person_key (a pseudonym of the profile: anonymous activity
-- merged into a customer shows under the customer's key), a browser session
-- session_key, an order order_key; each is stable, so rows link up across
-- the views.
CREATE VIEW personalisation.events_report WITH (security_barrier) AS
SELECT personalisation.pseudonym(k.key, 'profile:' || e.profile_id) AS person_key,
       personalisation.pseudonym(k.key, 'session:' || e.session_id) AS session_key,
       e.kind, e.occurred_at, e.category_id, e.product_id, e.quantity,
       personalisation.pseudonym(k.key, 'order:' || e.order_id) AS order_key,
       e.value
  FROM personalisation.events e CROSS JOIN personalisation.pseudonym_key k;

CREATE VIEW personalisation.orders_report WITH (security_barrier) AS
SELECT personalisation.pseudonym(k.key, 'order:' || o.order_id) AS order_key,
       personalisation.pseudonym(k.key, 'profile:' || o.profile_id) AS person_key,
       o.occurred_at, o.line_count, o.total
  FROM personalisation.orders o CROSS JOIN personalisation.pseudonym_key k;

CREATE VIEW personalisation.order_lines_report WITH (security_barrier) AS
SELECT personalisation.pseudonym(k.key, 'order:' || l.order_id) AS order_key,
       l.product_id, l.quantity, l.unit_price
  FROM personalisation.order_lines l CROSS JOIN personalisation.pseudonym_key k;

-- People as analysts see them: known (a customer) or anonymous, and what
-- they allowed us to send.
CREATE VIEW personalisation.people_report WITH (security_barrier) AS
SELECT personalisation.pseudonym(k.key, 'profile:' || p.profile_id) AS person_key,
       p.created_at, p.customer_id IS NOT NULL AS known, p.email IS NOT NULL AS has_email,
       p.email_consent
  FROM personalisation.profiles p CROSS JOIN personalisation.pseudonym_key k;

-- Affinity as analysts see it: affinity_scores with pseudonyms for the
-- profile and the session.
CREATE VIEW personalisation.affinity_report WITH (security_barrier) AS
SELECT personalisation.pseudonym(k.key, 'profile:' || a.profile_id) AS person_key, a.scope,
       personalisation.pseudonym(k.key, 'session:' || a.session_id) AS session_key,
       a.dimension, a.key, a.score, a.last_event_at
  FROM personalisation.affinity_scores a CROSS JOIN personalisation.pseudonym_key k;
-- Roles and privileges.  This part comes last, so that it covers every
-- function, view and table the parts above created.
--
-- Three roles, created here unless they exist (roles belong to the cluster:
-- a second database installing the extension reuses them).  They cannot log
-- in; an administrator grants them to the login roles that need them, for
-- example GRANT personalisation_shop TO shop_app.
--   personalisation_shop     the shop's application: tracking, login, consent,
--                            ranking and recommendations; maintains the
--                            catalogue tables categories and products
--   personalisation_analyst  the reporting views, which show no customer id,
--                            email, session id or order id in clear
--   personalisation_sender   the delivery workers: claim, acknowledge and fail
--                            messages (claim_messages returns their payloads)
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['personalisation_shop', 'personalisation_analyst', 'personalisation_sender'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$$;

-- Nothing for PUBLIC: not the functions above, nor those an upgrade script adds.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA personalisation FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA personalisation FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA personalisation FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA personalisation REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA personalisation TO personalisation_shop, personalisation_analyst, personalisation_sender;

-- The access map: who may use each function, view and table of the schema,
-- one line per name (a function's line covers all its overloads).  Every
-- function and view of the schema must have a line, or the installation
-- fails naming it; a table needs one only to be granted.
--   role_name  the role granted it, or owner_only (the extension's owner:
--              the administrator, pg_cron and the background worker)
--   runs_as    functions: 'owner' makes it SECURITY DEFINER with
--              search_path pinned to pg_catalog, pg_temp, so its role needs
--              no privilege on any table; 'caller' is for helpers that read
--              no table and are called per row by the views
-- What a grant gives: a function EXECUTE, a view SELECT, a table SELECT,
-- INSERT, UPDATE and DELETE.
CREATE TABLE personalisation.access_map (
    object_name text NOT NULL,
    role_name   text NOT NULL CHECK (role_name IN ('personalisation_shop', 'personalisation_analyst',
                                                   'personalisation_sender', 'owner_only')),
    runs_as     text NOT NULL CHECK (runs_as IN ('owner', 'caller')),
    PRIMARY KEY (object_name, role_name)
);

INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
-- the shop's application
    ('track_page_view',      'personalisation_shop',    'owner'),
    ('track_cart_add',       'personalisation_shop',    'owner'),
    ('track_cart_remove',    'personalisation_shop',    'owner'),
    ('track_purchase',       'personalisation_shop',    'owner'),
    ('track_session_end',    'personalisation_shop',    'owner'),
    ('track_subscription_start', 'personalisation_shop', 'owner'),
    ('track_subscription_stop',  'personalisation_shop', 'owner'),
    ('set_consent',          'personalisation_shop',    'owner'),
    ('identify',             'personalisation_shop',    'owner'),
    ('identify_on_login',    'personalisation_shop',    'owner'),
    ('track_refund',         'personalisation_shop',    'owner'),
    ('rank_products',        'personalisation_shop',    'owner'),
    ('rank_categories',      'personalisation_shop',    'owner'),
    ('rank_modules',         'personalisation_shop',    'owner'),
    ('holdout_arm',          'personalisation_shop',    'owner'),
    ('also_bought',          'personalisation_shop',    'owner'),
    ('recommend_for_cart',   'personalisation_shop',    'owner'),
    ('categories',           'personalisation_shop',    'owner'),
    ('products',             'personalisation_shop',    'owner'),
-- analysts
    ('journey_report',       'personalisation_analyst', 'owner'),
    ('post_purchase_order_value', 'personalisation_analyst', 'owner'),
    ('subscription_uptake',  'personalisation_analyst', 'owner'),
    ('subscription_retention', 'personalisation_analyst', 'owner'),
    ('events_report',        'personalisation_analyst', 'owner'),
    ('orders_report',        'personalisation_analyst', 'owner'),
    ('order_lines_report',   'personalisation_analyst', 'owner'),
    ('people_report',        'personalisation_analyst', 'owner'),
    ('affinity_report',      'personalisation_analyst', 'owner'),
    ('ranking_holdout',      'personalisation_analyst', 'owner'),
    ('holdout_arm',          'personalisation_analyst', 'owner'),
    ('attribution_window',   'personalisation_analyst', 'caller'),
    ('pseudonym',            'personalisation_analyst', 'caller'),
    ('affinity_entries',     'personalisation_analyst', 'caller'),
    ('affinity_key',         'personalisation_analyst', 'caller'),
-- delivery workers
    ('claim_messages',       'personalisation_sender',  'owner'),
    ('ack_message',          'personalisation_sender',  'owner'),
    ('ack_messages',         'personalisation_sender',  'owner'),
    ('fail_message',         'personalisation_sender',  'owner'),
-- the owner only
    ('run_due',              'owner_only',              'owner'),
    ('maintain_partitions',  'owner_only',              'owner'),
    ('schedule_jobs',        'owner_only',              'owner'),
    ('unmerge',              'owner_only',              'owner'),
    ('forget_customer',      'owner_only',              'owner'),
    ('export_customer',      'owner_only',              'owner'),
    ('worker_status',        'owner_only',              'owner'),
    ('start_worker',         'owner_only',              'owner'),
    ('preloaded',            'owner_only',              'caller'),
    ('rebuild_affinity',     'owner_only',              'owner'),
    ('expire_session_affinity', 'owner_only',           'owner'),
    ('refresh_popularity',   'owner_only',              'owner'),
    ('catalogue_changed',    'owner_only',              'owner'),
    ('affinity_fold',        'owner_only',              'caller'),
    ('affinity_scores',      'owner_only',              'owner'),
    ('affinity_dimensions',  'owner_only',              'owner'),
    ('rebuild_complementarity',   'owner_only',         'owner'),
    ('maintain_complementarity',  'owner_only',         'owner'),
    ('pause_complementarity',     'owner_only',         'owner'),
    ('complement_product_orders', 'owner_only',         'owner'),
    ('journey_run_checks',   'owner_only',              'owner'),
    ('journey_run_purchases', 'owner_only',             'owner'),
    ('subscription_customers', 'owner_only',            'owner');

-- Apply the map, and refuse a function or view it does not classify.
DO $$
DECLARE
    entry record;
    target record;
    matched boolean;
    missing text;
BEGIN
    FOR entry IN SELECT m.* FROM personalisation.access_map m ORDER BY m.object_name, m.role_name LOOP
        matched := false;
        FOR target IN
            SELECT pg_catalog.format('personalisation.%I(%s)', p.proname,
                                     pg_catalog.pg_get_function_identity_arguments(p.oid)) AS signature
              FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'personalisation'::pg_catalog.regnamespace AND p.proname = entry.object_name
        LOOP
            matched := true;
            IF entry.runs_as = 'owner' THEN
                EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp',
                                          target.signature);
            END IF;
            IF entry.role_name <> 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', target.signature, entry.role_name);
            END IF;
        END LOOP;
        FOR target IN
            SELECT pg_catalog.format('personalisation.%I', c.relname) AS relation, c.relkind
              FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'personalisation'::pg_catalog.regnamespace AND c.relname = entry.object_name
               AND c.relkind IN ('r', 'p', 'v', 'm')
        LOOP
            matched := true;
            IF entry.role_name <> 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT %s ON TABLE %s TO %I',
                                          CASE WHEN target.relkind IN ('v', 'm') THEN 'SELECT'
                                               ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                                          target.relation, entry.role_name);
            END IF;
        END LOOP;
        IF NOT matched THEN
            RAISE EXCEPTION 'personalisation.access_map names "%", which is no function, table or view of schema personalisation',
                            entry.object_name
                  USING HINT = 'Correct or remove its line in the access map (sql/security.sql).';
        END IF;
    END LOOP;

    SELECT pg_catalog.string_agg(DISTINCT o.name, ', ') INTO missing
      FROM (SELECT p.proname::text AS name FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'personalisation'::pg_catalog.regnamespace
            UNION ALL
            SELECT c.relname::text FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'personalisation'::pg_catalog.regnamespace AND c.relkind IN ('v', 'm')) o
     WHERE NOT EXISTS (SELECT FROM personalisation.access_map m WHERE m.object_name = o.name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the access map does not say who may use: %', missing
              USING HINT = 'Add one line per name to the access map in sql/security.sql: the role that may use it, or owner_only.';
    END IF;
END
$$;
