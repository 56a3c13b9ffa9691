-- Identity: a visitor browses anonymously and logs in; the same customer
-- shops on a phone; a shared device changes hands.  Every merge is in the
-- ledger and can be undone.
SET personalisation.event_retention = '36500d';
SET timezone = 'UTC';
CREATE VIEW id_sessions AS
SELECT s.session_id, p.customer_id, p.email,
       (SELECT count(*) FROM personalisation.events e WHERE e.profile_id = p.profile_id) AS profile_events,
       (SELECT count(*) FROM personalisation.cart_lines c WHERE c.profile_id = p.profile_id) AS profile_cart_lines
  FROM personalisation.sessions s JOIN personalisation.profiles p USING (profile_id)
 WHERE s.session_id LIKE 'id-%';

-- anonymous browsing, then the first login: the profile becomes the customer's
SELECT personalisation.track_page_view('id-laptop', 'knives', NULL, '2026-03-01 09:00+00');
SELECT personalisation.track_cart_add('id-laptop', 'knife-1', 1, '2026-03-01 09:01+00');
SELECT personalisation.identify('id-laptop', 'cust-42', 'ada@example.com', '2026-03-01 09:02+00')
     = (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'id-laptop') AS kept_profile;
SELECT * FROM id_sessions ORDER BY session_id;

-- the phone browses anonymously, then logs in: its history merges into the customer's
SELECT personalisation.track_page_view('id-phone', NULL, 'board-1', '2026-03-01 10:00+00');
SELECT personalisation.track_cart_add('id-phone', 'knife-1', 2, '2026-03-01 08:30+00');
SELECT personalisation.track_cart_add('id-phone', 'board-1', 1, '2026-03-01 10:01+00');
SELECT personalisation.identify('id-phone', 'cust-42', NULL, '2026-03-01 10:05+00')
     = (SELECT profile_id FROM personalisation.profiles WHERE customer_id = 'cust-42') AS customer_profile;
SELECT * FROM id_sessions ORDER BY session_id;
SELECT c.product_id, c.quantity, c.added_at, c.session_id
  FROM personalisation.cart_lines c JOIN personalisation.profiles p USING (profile_id)
 WHERE p.customer_id = 'cust-42' ORDER BY c.product_id;
SELECT customer_id, session_id, reason, merged_at, moved, unmerged_at
  FROM personalisation.merges WHERE customer_id = 'cust-42';
-- the same login again changes nothing
SELECT personalisation.identify('id-phone', 'cust-42', NULL, '2026-03-01 10:05+00')
     = (SELECT profile_id FROM personalisation.profiles WHERE customer_id = 'cust-42') AS customer_profile;
SELECT count(*) AS merges FROM personalisation.merges WHERE customer_id = 'cust-42';

-- a shared device: the phone logs in as another customer and continues on that profile
SELECT personalisation.identify('id-phone', 'cust-77', NULL, '2026-03-01 11:00+00') IS NOT NULL AS identified;
SELECT personalisation.track_page_view('id-phone', 'knives', NULL, '2026-03-01 11:01+00');
SELECT * FROM id_sessions ORDER BY session_id;
SELECT count(*) AS merges_of_known_customers FROM personalisation.merges m
  JOIN personalisation.profiles p ON p.profile_id = m.from_profile_id WHERE p.customer_id IS NOT NULL;

-- placeholders are refused
SELECT personalisation.identify('id-phone', 'undefined');
SET personalisation.blocked_identifiers = 'guest, n/a';
SELECT personalisation.identify('id-phone', ' Guest ');
RESET personalisation.blocked_identifiers;
SELECT personalisation.identify('id-phone', 'cust-77', 'not-an-address');

-- unmerge: the phone's anonymous history and cart lines go back to its own profile;
-- the session stays with cust-77, the customer it logged in as afterwards
SELECT personalisation.unmerge(merge_id, '2026-03-01 12:00+00') = from_profile_id AS restored
  FROM personalisation.merges WHERE customer_id = 'cust-42';
SELECT * FROM id_sessions ORDER BY session_id;
SELECT p.customer_id, count(*) AS events, count(e.merge_id) AS moved_by_a_merge
  FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
 WHERE e.session_id LIKE 'id-%' GROUP BY p.customer_id ORDER BY p.customer_id;
SELECT c.product_id, c.quantity, c.added_at
  FROM personalisation.cart_lines c JOIN personalisation.merges m ON c.profile_id = m.from_profile_id
 WHERE m.customer_id = 'cust-42' ORDER BY c.product_id;
-- the ledger: everything came back but the session, which now belongs to cust-77
SELECT customer_id, restored, unmerged_at FROM personalisation.merges WHERE customer_id = 'cust-42';
SELECT personalisation.unmerge(merge_id, '2026-03-01 12:30+00') = from_profile_id AS unmerged_again
  FROM personalisation.merges WHERE customer_id = 'cust-42';
SELECT personalisation.unmerge(999999);
