-- bench/load.sh checks, run as the owner once the load has stopped, the
-- worker and pg_cron are off and the queue is drained (psql variables:
-- deadlocks_before, the database's deadlock count before the load).  Each
-- check is one row of load_checks; a capability with derived state adds its
-- own "equal to a recomputation from the event log" check as one more INSERT.
CREATE TEMP TABLE load_checks (name text, ok boolean, detail text);

-- Concurrency.
INSERT INTO load_checks
SELECT 'no deadlock (pg_stat_database)', deadlocks = :deadlocks_before, deadlocks - :deadlocks_before || ' deadlocks'
  FROM pg_stat_database WHERE datname = current_database();

-- Messages: each written once per (run, step), each handed out and delivered exactly once.
INSERT INTO load_checks
SELECT 'every message written once per journey step',
       count(*) = count(DISTINCT (profile_id, run_id, step))
       AND NOT EXISTS (SELECT FROM personalisation.journey_run_steps s WHERE s.outcome = 'sent'
                        AND NOT EXISTS (SELECT FROM personalisation.outbox o
                                         WHERE o.profile_id = s.profile_id AND o.message_id = s.message_id)),
       count(*) || ' messages'
  FROM personalisation.outbox;
INSERT INTO load_checks
SELECT 'every message handed out at most once', count(*) = count(DISTINCT message_id),
       count(*) - count(DISTINCT message_id) || ' handed out twice'
  FROM public.load_deliveries;
INSERT INTO load_checks
SELECT 'every message due was delivered exactly once (none left queued)',
       NOT EXISTS (SELECT FROM personalisation.outbox o WHERE o.queued AND o.available_at <= now())
       AND NOT EXISTS (SELECT FROM personalisation.outbox o WHERE o.status = 'delivered'
                        AND NOT EXISTS (SELECT FROM public.load_deliveries d WHERE d.message_id = o.message_id))
       AND NOT EXISTS (SELECT FROM public.load_deliveries d
                        WHERE NOT EXISTS (SELECT FROM personalisation.outbox o
                                           WHERE o.message_id = d.message_id AND o.status = 'delivered')),
       (SELECT count(*) FROM personalisation.outbox WHERE status = 'delivered') || ' delivered, '
       || (SELECT count(*) FROM personalisation.outbox WHERE status IN ('cancelled', 'suppressed')) || ' withdrawn';

-- Derived state against a recomputation from the event log.

-- Carts: every cart event replayed in time order on the profile it was
-- recorded on, anonymous carts folded into the customer's at their merge.
CREATE FUNCTION pg_temp.replayed_carts() RETURNS TABLE (profile_id bigint, product_id text, quantity bigint)
LANGUAGE plpgsql AS $$
DECLARE
  step record;
BEGIN
  CREATE TEMP TABLE replay (profile_id bigint, product_id text, quantity bigint, PRIMARY KEY (profile_id, product_id));
  FOR step IN
      SELECT e.occurred_at AS at, 0 AS seq, coalesce(m.from_profile_id, e.profile_id) AS profile_id,
             e.kind, e.product_id, e.quantity, e.order_id, NULL::bigint AS into_profile_id
        FROM personalisation.events e
        LEFT JOIN personalisation.merges m ON m.merge_id = e.merge_id AND m.profile_id = e.profile_id
       WHERE e.kind IN ('cart_add', 'cart_remove', 'purchase')
      UNION ALL
      SELECT m.merged_at, 1, m.from_profile_id, 'merge', NULL, NULL, NULL, m.profile_id
        FROM personalisation.merges m WHERE m.unmerged_at IS NULL
      ORDER BY 1, 2
  LOOP
    CASE step.kind
      WHEN 'cart_add' THEN
        INSERT INTO replay VALUES (step.profile_id, step.product_id, step.quantity)
        ON CONFLICT ON CONSTRAINT replay_pkey DO UPDATE SET quantity = replay.quantity + excluded.quantity;
      WHEN 'cart_remove' THEN
        DELETE FROM replay r WHERE r.profile_id = step.profile_id AND r.product_id = step.product_id
           AND (step.quantity IS NULL OR r.quantity <= step.quantity);
        UPDATE replay r SET quantity = r.quantity - step.quantity
         WHERE r.profile_id = step.profile_id AND r.product_id = step.product_id;
      WHEN 'purchase' THEN
        DELETE FROM replay r WHERE r.profile_id = step.profile_id
           AND r.product_id IN (SELECT l.product_id FROM personalisation.order_lines l WHERE l.order_id = step.order_id);
      WHEN 'merge' THEN
        INSERT INTO replay SELECT step.into_profile_id, r.product_id, r.quantity FROM replay r
         WHERE r.profile_id = step.profile_id
        ON CONFLICT ON CONSTRAINT replay_pkey DO UPDATE SET quantity = replay.quantity + excluded.quantity;
        DELETE FROM replay r WHERE r.profile_id = step.profile_id;
    END CASE;
  END LOOP;
  RETURN QUERY SELECT * FROM replay;
  DROP TABLE replay;
END $$;
CREATE TEMP TABLE load_replayed_carts AS SELECT * FROM pg_temp.replayed_carts();
INSERT INTO load_checks
SELECT 'cart contents equal a replay of the cart events', count(*) = 0, count(*) || ' lines differ'
  FROM ((SELECT profile_id, product_id, quantity::bigint FROM personalisation.cart_lines
         EXCEPT SELECT * FROM load_replayed_carts)
        UNION ALL
        (SELECT * FROM load_replayed_carts
         EXCEPT SELECT profile_id, product_id, quantity::bigint FROM personalisation.cart_lines)) differ;
INSERT INTO load_checks
SELECT 'cart summaries count their lines', count(*) = 0, count(*) || ' carts differ'
  FROM personalisation.carts c
 WHERE c.line_count <> (SELECT count(*) FROM personalisation.cart_lines l WHERE l.profile_id = c.profile_id);
INSERT INTO load_checks
SELECT 'orders agree with their lines and purchase events', count(*) = 0, count(*) || ' orders differ'
  FROM personalisation.orders o
 WHERE (o.line_count, o.total) IS DISTINCT FROM
       (SELECT (count(*)::int, sum(l.quantity * l.unit_price)) FROM personalisation.order_lines l WHERE l.order_id = o.order_id)
    OR NOT EXISTS (SELECT FROM personalisation.events e WHERE e.kind = 'purchase' AND e.order_id = o.order_id);

-- Complementarity: the counts kept by every purchase equal a rebuild from the orders.
CREATE TEMP TABLE load_live_pairs AS SELECT * FROM personalisation.complement_pairs WHERE co_orders <> 0;
CREATE TEMP TABLE load_live_products AS SELECT * FROM personalisation._complement_product_orders;
SELECT * FROM personalisation.rebuild_complementarity();
INSERT INTO load_checks
SELECT 'product pair counts equal a rebuild from the orders', count(*) = 0, count(*) || ' pairs or products differ'
  FROM ((SELECT product_a, product_b, co_orders FROM load_live_pairs
         EXCEPT SELECT product_a, product_b, co_orders FROM personalisation.complement_pairs WHERE co_orders <> 0)
        UNION ALL
        (SELECT product_a, product_b, co_orders FROM personalisation.complement_pairs WHERE co_orders <> 0
         EXCEPT SELECT product_a, product_b, co_orders FROM load_live_pairs)
        UNION ALL
        (SELECT product_id, NULL, orders FROM load_live_products
         EXCEPT SELECT product_id, NULL, orders FROM personalisation._complement_product_orders)
        UNION ALL
        (SELECT product_id, NULL, orders FROM personalisation._complement_product_orders
         EXCEPT SELECT product_id, NULL, orders FROM load_live_products)) differ;

-- Affinity: the scores kept event by event equal a replay of the event log
-- (rebuild_affinity), both decayed to one instant (one transaction), within
-- float4 rounding.  The load database keeps up to 250 entries per row and no
-- row may reach that cap: an eviction would make the two differ by design
-- (a fold of two capped histories is not their capped replay).
BEGIN;
CREATE TEMP TABLE load_live_affinity AS
SELECT profile_id, scope, coalesce(session_id, '') AS session_id, dimension, key, score FROM personalisation.affinity_scores;
SELECT personalisation.rebuild_affinity();
INSERT INTO load_checks
SELECT 'affinity equals a replay of the event log (rebuild_affinity)',
       count(*) = 0 AND (SELECT max(n) < current_setting('personalisation.affinity_max_entries')::int
                           FROM (SELECT count(*) AS n FROM load_live_affinity GROUP BY profile_id, scope, session_id) rows),
       count(*) || ' of ' || (SELECT count(*) FROM load_live_affinity) || ' scores differ, at most '
       || (SELECT max(n) FROM (SELECT count(*) AS n FROM load_live_affinity GROUP BY profile_id, scope, session_id) rows)
       || ' entries per row'
  FROM load_live_affinity l
  FULL JOIN (SELECT profile_id, scope, coalesce(session_id, '') AS session_id, dimension, key, score
               FROM personalisation.affinity_scores) r USING (profile_id, scope, session_id, dimension, key)
 WHERE l.score IS NULL OR r.score IS NULL OR abs(l.score - r.score) > 1e-3 * greatest(abs(r.score), 1);
COMMIT;

SELECT CASE WHEN ok THEN 'ok' ELSE 'not ok' END || ' - ' || name || ' (' || detail || ')' FROM load_checks ORDER BY ok, name;
