
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
    quantity bigint DEFAULT 1,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_cart_add';

CREATE FUNCTION personalisation.track_cart_remove(
    session_id text,
    product_id text,
    quantity bigint DEFAULT NULL,
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

-- The text overloads of the jsonb-taking functions call the same C function,
-- which parses the string itself: a literal or a driver's untyped parameter
-- with a JSON syntax error gets the extension's message and hint.
CREATE FUNCTION personalisation.track_purchase(
    session_id text,
    order_id text,
    items text,
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

-- Many events in one call: each element tracked as the function of its kind
-- would track it ({"kind": "page_view", "session_id": ..., ...}), in order;
-- a refused element fails the whole call.
CREATE FUNCTION personalisation.track_events(events jsonb)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_events';
CREATE FUNCTION personalisation.track_events(events text)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_events';
