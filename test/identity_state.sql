-- Digests of every row identify() and unmerge() can touch, included by the
-- identity pgTAP files: equal digests mean nothing changed.
-- identity_data covers the per-person tables, identity_all adds the merge ledger.
CREATE TEMP VIEW identity_data AS
SELECT md5(concat_ws('|',
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.profiles t),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.sessions t),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.events t),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.cart_lines t),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.carts t),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.orders t),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.consent_history t))) AS digest;
CREATE TEMP VIEW identity_all AS
SELECT md5(concat_ws('|', (SELECT digest FROM identity_data),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.merges t),
  (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM personalisation.merge_items t))) AS digest;
