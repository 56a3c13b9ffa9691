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
CREATE FUNCTION personalisation._pseudonym(key bytea, value text)
RETURNS text LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pseudonym';

-- Analysts' views: no customer id, email, session id or order id in clear.
-- A person is person_key (a pseudonym of the profile: anonymous activity
-- merged into a customer shows under the customer's key), a browser session
-- session_key, an order order_key; each is stable, so rows link up across
-- the views.
CREATE VIEW personalisation.events_report WITH (security_barrier) AS
SELECT personalisation._pseudonym(k.key, 'profile:' || e.profile_id) AS person_key,
       personalisation._pseudonym(k.key, 'session:' || e.session_id) AS session_key,
       e.kind, e.occurred_at, e.category_id, e.product_id, e.quantity,
       personalisation._pseudonym(k.key, 'order:' || e.order_id) AS order_key,
       e.value
  FROM personalisation.events e CROSS JOIN personalisation.pseudonym_key k;

-- Orders as analysts see them: the order and its customer as pseudonyms,
-- when, how many lines and the total.
CREATE VIEW personalisation.orders_report WITH (security_barrier) AS
SELECT personalisation._pseudonym(k.key, 'order:' || o.order_id) AS order_key,
       personalisation._pseudonym(k.key, 'profile:' || o.profile_id) AS person_key,
       o.occurred_at, o.line_count, o.total
  FROM personalisation.orders o CROSS JOIN personalisation.pseudonym_key k;

-- Order lines as analysts see them: the order as a pseudonym, the product,
-- quantity and unit price.
CREATE VIEW personalisation.order_lines_report WITH (security_barrier) AS
SELECT personalisation._pseudonym(k.key, 'order:' || l.order_id) AS order_key,
       l.product_id, l.quantity, l.unit_price
  FROM personalisation.order_lines l CROSS JOIN personalisation.pseudonym_key k;

-- People as analysts see them: known (a customer) or anonymous, and what
-- they allowed us to send.
CREATE VIEW personalisation.people_report WITH (security_barrier) AS
SELECT personalisation._pseudonym(k.key, 'profile:' || p.profile_id) AS person_key,
       p.created_at, p.customer_id IS NOT NULL AS known, p.email IS NOT NULL AS has_email,
       p.email_consent
  FROM personalisation.profiles p CROSS JOIN personalisation.pseudonym_key k;

-- Affinity as analysts see it: affinity_scores with pseudonyms for the
-- profile and the session.
CREATE VIEW personalisation.affinity_report WITH (security_barrier) AS
SELECT personalisation._pseudonym(k.key, 'profile:' || a.profile_id) AS person_key, a.scope,
       personalisation._pseudonym(k.key, 'session:' || a.session_id) AS session_key,
       a.dimension, a.key, a.score, a.last_event_at
  FROM personalisation.affinity_scores a CROSS JOIN personalisation.pseudonym_key k;
