-- A delivery worker that holds its transaction open while it delivers, as
-- the raw DELETE consumer does: claim and acknowledge in one transaction.
BEGIN;
SELECT coalesce(string_agg(message_id::text, ','), '') AS ids
  FROM personalisation.claim_messages('bench-' || :client_id, :batch, '5 minutes') \gset
SELECT personalisation.ack_messages('{:ids}');
COMMIT;
