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
    send_within          interval CHECK (send_within > interval '0' AND send_within <= interval '3650 days'),  -- no message later than this after the run starts
    description          text,
    CONSTRAINT journeys_name_not_blank CHECK (btrim(journey) <> '')
);

-- One row per step, done in step order.  A step is due delay after the
-- run's anchor (the cart's last activity, or the order), never before the
-- cart is declared abandoned; with before_runout, a run about one product
-- is due that long before the product runs out (never before delay, and
-- early enough to go out within the journey's send_within).  Conditions:
-- max_lateness (a step reached later than this after it was due is skipped
-- as pointless), min_cart_value and min_recommendations.  Every interval is
-- at most 3650 days; amounts are bounded like prices (0 or more, below 10^12,
-- at most 4 decimal places), and a percent incentive is at most 100.
CREATE TABLE personalisation.journey_steps (
    journey         text NOT NULL REFERENCES personalisation.journeys (journey),
    step            int NOT NULL CHECK (step > 0),
    name            text NOT NULL,
    delay           interval NOT NULL CHECK (delay BETWEEN interval '0' AND interval '3650 days'),
    channel         text NOT NULL CHECK (channel IN ('push', 'email')),
    template        text NOT NULL,   -- what the delivery worker renders
    blocks          text[] NOT NULL DEFAULT '{items}'
                    CHECK (blocks <@ ARRAY['items', 'social_proof', 'incentive', 'recommendations',
                                           'subscription_offer']),
    max_lateness    interval NOT NULL DEFAULT '12 hours'
                    CHECK (max_lateness BETWEEN interval '0' AND interval '3650 days'),
    min_cart_value  numeric CHECK (min_cart_value >= 0 AND min_cart_value < 1e12
                                   AND pg_catalog.scale(min_cart_value) <= 4),
    incentive_kind  text CHECK (incentive_kind IN ('percent', 'amount', 'free_shipping')),
    incentive_value numeric CHECK (incentive_value >= 0 AND incentive_value < 1e12
                                   AND pg_catalog.scale(incentive_value) <= 4),
    enabled         boolean NOT NULL DEFAULT true,
    before_runout   interval CHECK (before_runout BETWEEN interval '0' AND interval '3650 days'),
    max_recommendations int NOT NULL DEFAULT 4 CHECK (max_recommendations BETWEEN 1 AND 50),
    min_recommendations int,
    PRIMARY KEY (journey, step),
    CONSTRAINT journey_steps_min_recommendations
        CHECK (min_recommendations BETWEEN 1 AND max_recommendations),
    CONSTRAINT journey_steps_incentive_described
        CHECK (('incentive' = ANY (blocks)) = (incentive_kind IS NOT NULL AND incentive_value IS NOT NULL)),
    CONSTRAINT journey_steps_incentive_percent
        CHECK (incentive_kind IS DISTINCT FROM 'percent' OR incentive_value <= 100)
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
INSERT INTO personalisation.event_partition_indexes VALUES
    ('product_views_idx', '(product_id, occurred_at)'
                          ' WHERE kind OPERATOR(pg_catalog.=) ''page_view'' AND product_id IS NOT NULL');

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

CREATE FUNCTION personalisation._attribution_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'attribution_window';

-- Per abandoned-cart journey, arm and step (step NULL: the arm as a whole):
-- carts abandoned, messages sent, held (holdout) and delivered, carts
-- recovered and their revenue, and the recovery rate.  A cart is recovered
-- when its profile orders within personalisation.attribution_window after
-- abandonment; the first such order is the recovered revenue, credited to
-- the last step sent (or held) before it.  Each cart counts in the arm its
-- run recorded when the cart was declared abandoned.  Against the holdout
-- arm's row of the same step: the uplift of the recovery rate with its 95%
-- interval and p-value (uplift_test, docs/measurement.md).  Ordered by
-- journey, arm (treatment first) and step (the whole arm, then 1, 2, ...).
-- No personal data.  The post-purchase journeys have their own views
-- (post_purchase.sql).
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
              AND o.occurred_at < r.abandoned_at + personalisation._attribution_window()
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
SELECT r.journey, r.arm, r.step, r.template, r.carts_abandoned, r.messages_sent, r.messages_held,
       r.messages_delivered, r.steps_skipped, r.carts_recovered, r.recovered_revenue,
       round(r.carts_recovered::numeric / r.carts_abandoned, 4) AS recovery_rate,
       round(r.recovered_revenue / r.carts_abandoned, 2) AS revenue_per_cart,
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM rows r
  LEFT JOIN rows h ON h.journey = r.journey AND h.arm = 'holdout' AND h.step IS NOT DISTINCT FROM r.step
  LEFT JOIN LATERAL personalisation.uplift_test(r.carts_abandoned, r.carts_recovered,
                                                h.carts_abandoned, h.carts_recovered) u ON r.arm <> 'holdout'
 ORDER BY r.journey, r.arm DESC, r.step NULLS FIRST;
