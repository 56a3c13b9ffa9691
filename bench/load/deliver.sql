-- A delivery worker: claims up to 50 messages, records each hand-out, and
-- acknowledges them in the name of the consumer that claimed them, then
-- waits a little before polling again.
WITH claimed AS (
    SELECT message_id FROM personalisation.claim_messages('load-sender-' || :client_id, 50, '5 minutes')
), handed AS (
    INSERT INTO public.load_deliveries (message_id) SELECT message_id FROM claimed RETURNING message_id
)
SELECT personalisation.ack_messages(coalesce(array_agg(message_id), '{}'), consumer => 'load-sender-' || :client_id) FROM handed;
\sleep 20 ms
