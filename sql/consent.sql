-- Consent: push belongs to the browser session, email to the profile; the
-- latest change wins even when changes arrive out of order; history is kept.
SET personalisation.event_retention = '36500d';
SET timezone = 'UTC';
SELECT personalisation.set_consent('c-s1', 'push', true, '2026-02-01 09:00+00', 'k1');
SELECT personalisation.set_consent('c-s1', 'email', true, '2026-02-01 09:01+00');
SELECT session_id, push_consent, push_consent_at FROM personalisation.sessions WHERE session_id = 'c-s1';
SELECT p.email_consent, p.email_consent_at FROM personalisation.profiles p
  JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = 'c-s1';
-- a withdrawal reported late, but stamped earlier than the grant, does not win
SELECT personalisation.set_consent('c-s1', 'push', false, '2026-02-01 08:00+00');
SELECT push_consent FROM personalisation.sessions WHERE session_id = 'c-s1';
-- a later withdrawal does
SELECT personalisation.set_consent('c-s1', 'push', false, '2026-02-01 10:00+00');
SELECT push_consent, push_consent_at FROM personalisation.sessions WHERE session_id = 'c-s1';
-- a retried event id changes nothing
SELECT personalisation.set_consent('c-s1', 'push', true, '2026-02-01 11:00+00', 'k1');
SELECT push_consent FROM personalisation.sessions WHERE session_id = 'c-s1';
SELECT channel, granted, occurred_at, event_id FROM personalisation.consent_history h
  JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = 'c-s1' ORDER BY change_id;
-- bad channel and NULL granted are refused
SELECT personalisation.set_consent('c-s1', 'sms', true);
SELECT personalisation.set_consent('c-s1', 'email', NULL);
