-- bench/journeys_baseline.sql: what a hand-written batch job would do for
-- the push round, set-based: one INSERT ... SELECT writing a message with
-- the cart's items for every abandoned cart into a plain table.
\set ON_ERROR_STOP on
CREATE TABLE bench_plain_outbox (profile_id bigint, created_at timestamptz, payload jsonb);
INSERT INTO bench_plain_outbox
SELECT c.profile_id, :'t1'::timestamptz,
       jsonb_build_object('session_id', c.session_id, 'items',
         (SELECT jsonb_agg(jsonb_build_object('product_id', l.product_id, 'name', p.name,
                   'quantity', l.quantity, 'unit_price', p.price, 'url', p.url, 'image_url', p.image_url)
                   ORDER BY l.added_at, l.product_id)
            FROM personalisation.cart_lines l JOIN personalisation.products p USING (product_id)
           WHERE l.profile_id = c.profile_id))
  FROM personalisation.carts c
 WHERE c.line_count > 0 AND c.last_activity_at <= :'t1'::timestamptz - interval '30 minutes';
