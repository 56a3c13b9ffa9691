-- Included by the ingestion pgTAP files: pg_temp.ingest_state(), a
-- fingerprint of every table ingestion writes to, to show that a refused
-- call wrote nothing.
CREATE FUNCTION pg_temp.ingest_state() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(s::text, ',' ORDER BY session_id) FROM personalisation.sessions s),
    (SELECT string_agg(p::text, ',' ORDER BY profile_id) FROM personalisation.profiles p),
    (SELECT string_agg(e::text, ',' ORDER BY e::text) FROM personalisation.events e),
    (SELECT string_agg(k::text, ',' ORDER BY event_id) FROM personalisation.event_keys k),
    (SELECT string_agg(a::text, ',' ORDER BY profile_id, session_id) FROM personalisation.affinity a),
    (SELECT string_agg(c::text, ',' ORDER BY profile_id, product_id) FROM personalisation.cart_lines c),
    (SELECT string_agg(c::text, ',' ORDER BY profile_id) FROM personalisation.carts c),
    (SELECT string_agg(o::text, ',' ORDER BY order_id) FROM personalisation.orders o),
    (SELECT string_agg(l::text, ',' ORDER BY order_id, product_id) FROM personalisation.order_lines l),
    (SELECT string_agg(h::text, ',' ORDER BY profile_id, change_id) FROM personalisation.consent_history h)))
$$;
