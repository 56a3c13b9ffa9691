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

-- Counted orders per product, the stripes summed (internal: no role reads it;
-- the library's statements sum the stripes themselves).
CREATE VIEW personalisation._complement_product_orders AS
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
    n bigint DEFAULT 10)
RETURNS TABLE (product_id text, co_orders bigint, confidence float8, lift float8, jaccard float8)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 10
AS 'MODULE_PATHNAME', 'also_bought';

CREATE FUNCTION personalisation.recommend_for_cart(
    session_id text,
    n bigint DEFAULT 10)
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
REVOKE ALL ON FUNCTION personalisation.also_bought(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.recommend_for_cart(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.rebuild_complementarity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.maintain_complementarity(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.pause_complementarity() FROM PUBLIC;

-- The counts start from the orders already recorded, with the configured
-- window and basket cap.
SELECT personalisation.rebuild_complementarity();
