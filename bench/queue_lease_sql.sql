-- The obvious hand-written lease queue on the same outbox table: claim the
-- oldest available messages (FOR UPDATE SKIP LOCKED, lease, attempts) in one
-- transaction and mark them delivered in a second, with no exit-rule or
-- consent check and no validation.  It writes what a lease must write.
WITH claimed AS (
    UPDATE personalisation.outbox o
       SET status = 'claimed', attempts = o.attempts + 1, claimed_by = 'bench-' || :client_id,
           lease_until = now() + interval '5 minutes'
     WHERE o.message_id = ANY (ARRAY(
               SELECT q.message_id FROM personalisation.outbox q
                WHERE q.queued AND q.available_at <= now() AND (q.status = 'pending' OR q.lease_until <= now())
                ORDER BY q.available_at LIMIT :batch FOR UPDATE SKIP LOCKED))
    RETURNING o.*)
SELECT coalesce(string_agg(message_id::text, ','), '') AS ids FROM claimed \gset
UPDATE personalisation.outbox SET status = 'delivered', finished_at = now(), lease_until = NULL
 WHERE message_id = ANY ('{:ids}') AND status = 'claimed';
