-- Walk-through: what the extension holds after the sample traffic.
\pset footer off
\echo
\echo '== The catalogue: a category tree and its products'
SELECT count(*) FILTER (WHERE parent_id IS NULL) AS top_level,
       count(*) FILTER (WHERE parent_id IS NOT NULL) AS below,
       (SELECT count(*) FROM personalisation.products) AS products,
       (SELECT count(*) FILTER (WHERE NOT in_stock) FROM personalisation.products) AS out_of_stock
  FROM personalisation.categories;

\echo '== Every visitor got a session and an anonymous profile on first sight'
SELECT count(*) AS sessions, count(DISTINCT profile_id) AS profiles,
       min(started_at)::timestamp(0) AS first_seen, max(last_seen_at)::timestamp(0) AS last_seen
  FROM personalisation.sessions;

\echo '== The event log, one row per tracked call, partitioned by UTC day'
SELECT kind, count(*) AS events FROM personalisation.events GROUP BY kind ORDER BY kind;
SELECT c.relname AS partition, count(e.*) AS events
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  LEFT JOIN personalisation.events e ON e.tableoid = c.oid
 WHERE i.inhparent = 'personalisation.events'::regclass
 GROUP BY c.relname HAVING count(e.*) > 0 ORDER BY 1;

\echo '== Carts still open, and orders'
SELECT count(*) FILTER (WHERE line_count > 0) AS open_carts,
       sum(line_count) AS open_lines FROM personalisation.carts;
SELECT count(*) AS orders, sum(total) AS revenue, round(avg(total), 2) AS average_order_value
  FROM personalisation.orders;

\echo '== Retries change nothing: the first view of demo-0001 sent again'
SELECT count(*) AS events_before FROM personalisation.events;
SELECT personalisation.track_page_view(session_id, NULL, product_id, occurred_at, event_id)
  FROM personalisation.events WHERE event_id = 'view-1-1';
SELECT count(*) AS events_after FROM personalisation.events;

\echo '== Consent: push on the browser session, email on the profile'
SELECT count(*) FILTER (WHERE push_consent) AS sessions_with_push FROM personalisation.sessions;
SELECT count(*) FILTER (WHERE email_consent) AS profiles_with_email_consent FROM personalisation.profiles;

\echo '== Most viewed products'
SELECT e.product_id, p.name, count(*) AS views
  FROM personalisation.events e JOIN personalisation.products p USING (product_id)
 WHERE e.kind = 'page_view' GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 5;
