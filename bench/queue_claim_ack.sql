-- A delivery worker with leases: claim a batch (one transaction), then
-- acknowledge it (a second transaction), as a worker that delivers in
-- between does.
SELECT coalesce(string_agg(message_id::text, ','), '') AS ids
  FROM personalisation.claim_messages('bench-' || :client_id, :batch, '5 minutes') \gset
SELECT personalisation.ack_messages('{:ids}');
