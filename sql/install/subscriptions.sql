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
