-- bench/load.sh setup (psql variables: db, products, sessions): the
-- catalogue, every session seen once, a third of the browsers accepting
-- push, a sixth of the visitors with a cart left two minutes ago, the login
-- roles the workload runs as, and the table the delivery worker logs to.
CREATE EXTENSION personalisation;
\ir catalogue.sql
SELECT count(personalisation.track_page_view('ls' || i, NULL, 'p' || (1 + i % :products), now() - interval '3 minutes'))
  FROM generate_series(0, :sessions - 1) i;
SELECT count(personalisation.set_consent('ls' || i, 'push', true, now() - interval '3 minutes'))
  FROM generate_series(0, :sessions - 1, 3) i;
SELECT count(personalisation.track_cart_add('ls' || i, 'p' || (1 + (i * 7) % :products), 1, now() - interval '2 minutes'))
  FROM generate_series(0, :sessions - 1, 6) i;
-- carts idle for a minute are abandoned, so that journeys run within the load
ALTER DATABASE :"db" SET personalisation.abandon_after = '1min';
-- no affinity entry is evicted, so that affinity can be compared with a replay
ALTER DATABASE :"db" SET personalisation.affinity_max_entries = 250;

CREATE TABLE public.load_deliveries (
    message_id   bigint NOT NULL,
    delivered_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'load_shop') THEN
        CREATE ROLE load_shop LOGIN IN ROLE personalisation_shop;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'load_sender') THEN
        CREATE ROLE load_sender LOGIN IN ROLE personalisation_sender;
    END IF;
END $$;
GRANT SELECT, INSERT ON public.load_deliveries TO load_sender;
ANALYZE;
