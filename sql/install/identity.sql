
-- Identity resolution: identify() and the identify_on_login() trigger stitch a
-- browser session to a known customer at login; every merge of an anonymous
-- profile into a customer's is written to the merge ledger and can be undone
-- with unmerge().

-- The merge that moved an event onto its current profile; NULL for events
-- recorded on the profile they are on.  unmerge() moves exactly these back.
ALTER TABLE personalisation.events ADD COLUMN merge_id bigint;
INSERT INTO personalisation.event_partition_indexes VALUES
    ('merge_idx', '(merge_id) WHERE merge_id IS NOT NULL');

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
