-- Walk-through: a visitor logs in on a laptop, then on a phone; one person.
\pset footer off
\echo
\echo '== Identity: demo-0007 logs in as customer alice; first login claims the anonymous profile'
SELECT personalisation.identify('demo-0007', 'alice', 'alice@example.com') AS alice_profile \gset
SELECT profile_id, customer_id, email,
       (SELECT count(*) FROM personalisation.events e WHERE e.profile_id = p.profile_id) AS events
  FROM personalisation.profiles p WHERE customer_id = 'alice';

\echo '== Later alice logs in on her phone (session demo-0013): its anonymous history is merged in'
SELECT personalisation.identify('demo-0013', 'alice') = :alice_profile AS same_profile;
SELECT count(*) AS events, count(DISTINCT session_id) AS sessions
  FROM personalisation.events WHERE profile_id = :alice_profile;
SELECT merge_id, from_profile_id, profile_id, reason, moved
  FROM personalisation.merges WHERE profile_id = :alice_profile;

\echo '== Every merge can be undone: the phone session gets its own history back'
SELECT personalisation.unmerge(merge_id) AS restored_profile
  FROM personalisation.merges WHERE profile_id = :alice_profile AND unmerged_at IS NULL;
SELECT count(*) AS alice_events FROM personalisation.events WHERE profile_id = :alice_profile;

\echo '== Two known customers are never merged: alice''s laptop is used by bob'
SELECT personalisation.identify('demo-0007', 'bob') <> :alice_profile AS bob_has_his_own_profile;
SELECT count(*) AS alice_events_kept FROM personalisation.events WHERE profile_id = :alice_profile;
