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
-- (first_orders).  Then, per arm, the repeat orders: of the customers the
-- journey enrolled (each in the arm of its first run, recorded when that
-- order enrolled it), how many placed a further standing order within
-- personalisation.repeat_order_window of that order, the repeat-order rate,
-- the revenue of those orders per customer, and against the holdout the
-- uplift of the repeat-order rate with its 95% interval and p-value
-- (uplift_test, docs/measurement.md).  No personal data.
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
                     AND o.occurred_at < c.done_at + personalisation._attribution_window()
), messages AS (
    SELECT journey, arm, count(*) AS messages FROM cross_sell GROUP BY journey, arm
), enrolled AS (
    SELECT DISTINCT ON (r.journey, r.profile_id) r.journey, r.arm, r.profile_id, r.order_id, r.anchor_at
      FROM personalisation.journey_runs r
      JOIN personalisation.journeys j ON j.journey = r.journey AND j.trigger = 'purchase'
     ORDER BY r.journey, r.profile_id, r.anchor_at, r.run_id
), repeats AS (
    SELECT e.journey, e.arm, e.profile_id, count(o.order_id) AS orders, sum(o.total) AS revenue
      FROM enrolled e
      LEFT JOIN standing o ON o.profile_id = e.profile_id AND o.order_id <> e.order_id
                          AND o.occurred_at >= e.anchor_at
                          AND o.occurred_at < e.anchor_at + personalisation.repeat_order_window()
     GROUP BY e.journey, e.arm, e.profile_id
), customers AS (
    SELECT journey, arm, count(*) AS customers,
           count(*) FILTER (WHERE orders > 0) AS repeat_customers,
           coalesce(sum(revenue), 0) AS repeat_revenue
      FROM repeats GROUP BY journey, arm
)
SELECT NULL::text AS journey, 'first_orders'::text AS cohort, NULL::bigint AS messages,
       count(*) AS orders, coalesce(sum(total), 0) AS order_value,
       round(avg(total), 2) AS average_order_value,
       NULL::bigint AS customers, NULL::bigint AS repeat_customers, NULL::numeric AS repeat_order_rate,
       NULL::numeric AS revenue_per_customer, NULL::float8 AS uplift, NULL::float8 AS uplift_low,
       NULL::float8 AS uplift_high, NULL::float8 AS p_value, NULL::float8 AS min_detectable_uplift,
       NULL::text AS sample_hint
  FROM first_orders
UNION ALL
SELECT m.journey, m.arm, m.messages, count(f.order_id), coalesce(sum(f.total), 0), round(avg(f.total), 2),
       c.customers, c.repeat_customers, round(c.repeat_customers::numeric / c.customers, 4),
       round(c.repeat_revenue / c.customers, 2),
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM messages m
  LEFT JOIN followed f ON f.journey = m.journey AND f.arm = m.arm
  LEFT JOIN customers c ON c.journey = m.journey AND c.arm = m.arm
  LEFT JOIN customers h ON h.journey = m.journey AND h.arm = 'holdout'
  LEFT JOIN LATERAL personalisation.uplift_test(c.customers, c.repeat_customers,
                                                h.customers, h.repeat_customers) u ON m.arm <> 'holdout'
 GROUP BY m.journey, m.arm, m.messages, c.customers, c.repeat_customers, c.repeat_revenue,
          u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
 ORDER BY journey NULLS FIRST, cohort DESC;

-- Every profile with a standing order: its first one, its first subscription
-- start, its arm in the subscription-offer journeys (that of its first
-- offer run; not_offered without one), the revenue of its standing orders
-- in the 30 days from the first, and whether it was still a customer in the
-- retention window, the 30 days up to the first order's 365th day: a
-- standing order placed in (first + 335 days, first + 365 days], or a
-- subscription active at some point of it.  The base of the two views below.
CREATE VIEW personalisation._subscription_customers AS
SELECT c.profile_id, c.first_order_at,
       (SELECT min(s.started_at) FROM personalisation.subscriptions s
         WHERE s.profile_id = c.profile_id) AS first_subscribed_at,
       coalesce((SELECT r.arm FROM personalisation.journey_runs r
                   JOIN personalisation.journeys j ON j.journey = r.journey
                  WHERE r.profile_id = c.profile_id AND j.trigger = 'subscribable_purchase'
                  ORDER BY r.run_id LIMIT 1), 'not_offered') AS offer_arm,
       (SELECT coalesce(sum(o.total), 0) FROM personalisation.orders o
         WHERE o.profile_id = c.profile_id AND o.refunded_at IS NULL
           AND o.occurred_at >= c.first_order_at
           AND o.occurred_at < c.first_order_at + interval '30 days') AS revenue_30_days,
       EXISTS (SELECT FROM personalisation.orders o
                WHERE o.profile_id = c.profile_id AND o.refunded_at IS NULL
                  AND o.occurred_at > c.first_order_at + interval '335 days'
                  AND o.occurred_at <= c.first_order_at + interval '365 days')
       OR EXISTS (SELECT FROM personalisation.subscriptions s
                   WHERE s.profile_id = c.profile_id
                     AND s.started_at <= c.first_order_at + interval '365 days'
                     AND (s.stopped_at IS NULL
                          OR s.stopped_at > c.first_order_at + interval '335 days')) AS retained_12_months
  FROM (SELECT o.profile_id, min(o.occurred_at) AS first_order_at
          FROM personalisation.orders o WHERE o.refunded_at IS NULL
         GROUP BY o.profile_id) c;

-- Subscription uptake per offer arm (arm NULL: everyone): of the customers
-- whose first standing order is at least 30 days old, how many first
-- subscribed within 30 days of it (or before it), how many later, how many
-- never, and the two uptake rates; the revenue of their standing orders in
-- those 30 days per customer; and the 12-month retention of the arm's
-- customers whose first standing order is at least 365 days old (retained
-- as in subscription_retention below).  Against the holdout arm: the uplift
-- of the uptake within 30 days and of the retention, each with its 95%
-- interval and p-value (uplift_test, docs/measurement.md).  Each customer
-- counts in the arm its first offer run recorded.  No personal data.
CREATE VIEW personalisation.subscription_uptake AS
WITH arms AS (
    SELECT offer_arm AS arm, count(*) AS customers,
           count(*) FILTER (WHERE first_subscribed_at <= first_order_at + interval '30 days')
               AS subscribed_within_30_days,
           count(*) FILTER (WHERE first_subscribed_at > first_order_at + interval '30 days')
               AS subscribed_later,
           count(*) FILTER (WHERE first_subscribed_at IS NULL) AS never_subscribed,
           sum(revenue_30_days) AS revenue_30_days,
           count(*) FILTER (WHERE first_order_at + interval '365 days' <= pg_catalog.now())
               AS retention_customers,
           count(*) FILTER (WHERE first_order_at + interval '365 days' <= pg_catalog.now()
                              AND retained_12_months) AS retained
      FROM personalisation._subscription_customers
     WHERE first_order_at + interval '30 days' <= pg_catalog.now()
     GROUP BY ROLLUP (offer_arm)
)
SELECT a.arm, a.customers, a.subscribed_within_30_days, a.subscribed_later, a.never_subscribed,
       round(a.subscribed_within_30_days::numeric / a.customers, 4) AS uptake_within_30_days,
       round(a.subscribed_later::numeric / a.customers, 4) AS uptake_later,
       round(a.revenue_30_days / a.customers, 2) AS revenue_per_customer,
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint,
       a.retention_customers, a.retained,
       round(a.retained::numeric / NULLIF(a.retention_customers, 0), 4) AS retention_rate,
       t.uplift AS retention_uplift, t.uplift_low AS retention_uplift_low,
       t.uplift_high AS retention_uplift_high, t.p_value AS retention_p_value
  FROM arms a
  LEFT JOIN arms h ON h.arm = 'holdout'
  LEFT JOIN LATERAL personalisation.uplift_test(a.customers, a.subscribed_within_30_days,
                                                h.customers, h.subscribed_within_30_days) u
         ON a.arm = 'treatment'
  LEFT JOIN LATERAL personalisation.uplift_test(a.retention_customers, a.retained,
                                                h.retention_customers, h.retained) t
         ON a.arm = 'treatment'
 ORDER BY a.arm DESC NULLS LAST;

-- 12-month retention by subscription timing: of the customers whose first
-- standing order is at least 365 days old, grouped by when they first
-- subscribed (within_30_days of the first order or before it,
-- after_30_days but within the 365, or never within the 365), how many were
-- still customers in the retention window (subscription_customers).
-- No personal data.
CREATE VIEW personalisation.subscription_retention AS
SELECT timing AS subscription_timing, count(*) AS customers,
       count(*) FILTER (WHERE retained) AS retained,
       round(count(*) FILTER (WHERE retained)::numeric / count(*), 4) AS retention_rate
  FROM (SELECT CASE WHEN c.first_subscribed_at <= c.first_order_at + interval '30 days' THEN 'within_30_days'
                    WHEN c.first_subscribed_at <= c.first_order_at + interval '365 days' THEN 'after_30_days'
                    ELSE 'never' END AS timing,
               c.retained_12_months AS retained
          FROM personalisation._subscription_customers c
         WHERE c.first_order_at + interval '365 days' <= pg_catalog.now()) t
 GROUP BY timing;
