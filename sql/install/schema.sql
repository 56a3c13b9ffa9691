-- personalisation: core schema (catalogue, profiles, sessions, events, carts, orders).
-- Every object is schema-qualified; nothing is granted to PUBLIC.

\echo Use "CREATE EXTENSION personalisation" to load this file. \quit

REVOKE ALL ON SCHEMA personalisation FROM PUBLIC;

-- Catalogue: plain tables the shop fills with INSERT or COPY.  Parents may be
-- loaded after their children within one transaction (the foreign key is deferred).
-- A price is 0 or more, below 10^12, with at most 4 decimal places (so NaN and
-- infinity are refused); a product lasts 1 to 3650 days (replenish_days).
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
    price          numeric CHECK (price >= 0 AND price < 1e12 AND pg_catalog.scale(price) <= 4),
    brand          text,
    url            text,
    image_url      text,
    in_stock       boolean NOT NULL DEFAULT true,
    subscribable   boolean NOT NULL DEFAULT false,
    replenish_days int CHECK (replenish_days BETWEEN 1 AND 3650),
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

-- The indexes of every day partition.  They are the partition's own, not
-- partitions of an index on events: a partition pg_restore attaches to an
-- events table with partitioned indexes would get a second copy of each
-- and fail on the dump's own (README, "Backup and restore").
-- maintain_partitions and the first event of a day create them on each
-- partition as events_pYYYYMMDD_<name>, definition being what follows
-- the table in CREATE INDEX ... ON partition.
CREATE TABLE personalisation.event_partition_indexes (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z_]{1,40}$'),
    definition text NOT NULL
);
INSERT INTO personalisation.event_partition_indexes VALUES
    ('profile_idx', '(profile_id, occurred_at)');

-- Idempotency keys: one row per event id the shop supplied, kept as long as the
-- events themselves.  A retried call finds its key here and changes nothing.
CREATE TABLE personalisation.event_keys (
    event_id    text PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);

-- The current cart of each profile, one row per product, of 1 to 1,000,000 units.
CREATE TABLE personalisation.cart_lines (
    profile_id  bigint NOT NULL,
    product_id  text NOT NULL,
    quantity    int NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
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

-- Orders and their lines, as recorded by track_purchase: quantities and prices
-- within the catalogue's bounds, so that totals and reports stay readable numbers.
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
    quantity   int NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    unit_price numeric NOT NULL CHECK (unit_price >= 0 AND unit_price < 1e12 AND pg_catalog.scale(unit_price) <= 4),
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
