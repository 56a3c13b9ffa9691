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
-- half of each page stays free: a claim rewrites every row of its batch in
-- one transaction, and a row's new version is a HOT update (no index entry)
-- only if it fits on the row's own page next to the still-live old ones;
-- with rows of about 1 KB, at 80 only about a third of a batch's claims fit
) WITH (fillfactor = 50);
ALTER SEQUENCE personalisation.outbox_message_id_seq OWNED BY personalisation.outbox.message_id;
CREATE INDEX outbox_queue_idx ON personalisation.outbox (available_at) WHERE queued;

CREATE FUNCTION personalisation.claim_messages(
    consumer text,
    max_messages bigint DEFAULT 100,
    lease interval DEFAULT '5 minutes',
    now timestamptz DEFAULT pg_catalog.now())
RETURNS SETOF personalisation.outbox LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'claim_messages';

-- An acknowledgement or failure names the consumer that claimed the message
-- (claim_messages' consumer): another consumer's lease is refused.  Only the
-- extension's owner may omit it, and settle any claim.
CREATE FUNCTION personalisation.ack_message(
    message_id bigint,
    now timestamptz DEFAULT pg_catalog.now(),
    consumer text DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ack_message';

CREATE FUNCTION personalisation.ack_messages(
    message_ids bigint[],
    now timestamptz DEFAULT pg_catalog.now(),
    consumer text DEFAULT NULL)
RETURNS int LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ack_messages';

CREATE FUNCTION personalisation.fail_message(
    message_id bigint,
    error text,
    now timestamptz DEFAULT pg_catalog.now(),
    consumer text DEFAULT NULL)
RETURNS text LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'fail_message';
