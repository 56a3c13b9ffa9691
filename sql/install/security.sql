-- Roles and privileges.  This part comes last, so that it covers every
-- function, view and table the parts above created.
--
-- Three roles, created here unless they exist (roles belong to the cluster:
-- a second database installing the extension reuses them).  They cannot log
-- in; an administrator grants them to the login roles that need them, for
-- example GRANT personalisation_shop TO shop_app.
--   personalisation_shop     the shop's application: tracking, login, consent,
--                            ranking and recommendations; maintains the
--                            catalogue tables categories and products
--   personalisation_analyst  the reporting views, which show no customer id,
--                            email, session id or order id in clear
--   personalisation_sender   the delivery workers: claim, acknowledge and fail
--                            messages (claim_messages returns their payloads)
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['personalisation_shop', 'personalisation_analyst', 'personalisation_sender'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA personalisation TO personalisation_shop, personalisation_analyst, personalisation_sender;

-- The access map: who may use each function, view and table of the schema,
-- one line per name (a function's line covers all its overloads).  Every
-- function and view of the schema must have a line, or the installation
-- fails naming it; a table needs one only to be granted.
--   role_name  the role granted it, or owner_only (the extension's owner:
--              the administrator, pg_cron and the background worker)
--   runs_as    functions: 'owner' makes it SECURITY DEFINER with
--              search_path pinned to pg_catalog, pg_temp, so its role needs
--              no privilege on any table; 'caller' is for helpers that read
--              no table and are called per row by the views
-- What a grant gives: a function EXECUTE, a view SELECT, a table SELECT,
-- INSERT, UPDATE and DELETE.
CREATE TABLE personalisation.access_map (
    object_name text NOT NULL,
    role_name   text NOT NULL CHECK (role_name IN ('personalisation_shop', 'personalisation_analyst',
                                                   'personalisation_sender', 'owner_only')),
    runs_as     text NOT NULL CHECK (runs_as IN ('owner', 'caller')),
    PRIMARY KEY (object_name, role_name)
);

INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
-- the shop's application
    ('track_page_view',      'personalisation_shop',    'owner'),
    ('track_cart_add',       'personalisation_shop',    'owner'),
    ('track_cart_remove',    'personalisation_shop',    'owner'),
    ('track_purchase',       'personalisation_shop',    'owner'),
    ('track_events',         'personalisation_shop',    'owner'),
    ('track_session_end',    'personalisation_shop',    'owner'),
    ('track_subscription_start', 'personalisation_shop', 'owner'),
    ('track_subscription_stop',  'personalisation_shop', 'owner'),
    ('set_consent',          'personalisation_shop',    'owner'),
    ('identify',             'personalisation_shop',    'owner'),
    ('identify_on_login',    'personalisation_shop',    'owner'),
    ('track_refund',         'personalisation_shop',    'owner'),
    ('rank_products',        'personalisation_shop',    'owner'),
    ('rank_categories',      'personalisation_shop',    'owner'),
    ('rank_modules',         'personalisation_shop',    'owner'),
    ('holdout_arm',          'personalisation_shop',    'owner'),
    ('also_bought',          'personalisation_shop',    'owner'),
    ('recommend_for_cart',   'personalisation_shop',    'owner'),
    ('categories',           'personalisation_shop',    'owner'),
    ('products',             'personalisation_shop',    'owner'),
-- analysts
    ('journey_report',       'personalisation_analyst', 'owner'),
    ('post_purchase_order_value', 'personalisation_analyst', 'owner'),
    ('subscription_uptake',  'personalisation_analyst', 'owner'),
    ('subscription_retention', 'personalisation_analyst', 'owner'),
    ('events_report',        'personalisation_analyst', 'owner'),
    ('orders_report',        'personalisation_analyst', 'owner'),
    ('order_lines_report',   'personalisation_analyst', 'owner'),
    ('people_report',        'personalisation_analyst', 'owner'),
    ('affinity_report',      'personalisation_analyst', 'owner'),
    ('ranking_holdout',      'personalisation_analyst', 'owner'),
    ('holdout_arm',          'personalisation_analyst', 'owner'),
    ('ranking_attribution_window', 'personalisation_analyst', 'caller'),
    ('repeat_order_window',  'personalisation_analyst', 'caller'),
    ('uplift_test',          'personalisation_analyst', 'caller'),
    ('uplift_claim',         'personalisation_analyst', 'caller'),
    ('uplift_summary',       'personalisation_analyst', 'owner'),
    ('uplift_report_html',   'personalisation_analyst', 'owner'),
    ('uplift_arms',          'personalisation_analyst', 'owner'),
-- delivery workers
    ('claim_messages',       'personalisation_sender',  'owner'),
    ('ack_message',          'personalisation_sender',  'owner'),
    ('ack_messages',         'personalisation_sender',  'owner'),
    ('fail_message',         'personalisation_sender',  'owner'),
-- the owner only
    ('run_due',              'owner_only',              'owner'),
    ('maintain_partitions',  'owner_only',              'owner'),
    ('schedule_jobs',        'owner_only',              'owner'),
    ('unmerge',              'owner_only',              'owner'),
    ('forget_customer',      'owner_only',              'owner'),
    ('export_customer',      'owner_only',              'owner'),
    ('worker_status',        'owner_only',              'owner'),
    ('start_worker',         'owner_only',              'owner'),
    ('jobs',                 'owner_only',              'owner'),
    ('preloaded',            'owner_only',              'caller'),
    ('rebuild_affinity',     'owner_only',              'owner'),
    ('expire_session_affinity', 'owner_only',           'owner'),
    ('refresh_popularity',   'owner_only',              'owner'),
    ('_catalogue_changed',    'owner_only',              'owner'),
    ('_replace_installed_row', 'owner_only',             'owner'),
    ('_shipped_row_edited',   'owner_only',              'owner'),
    ('_remember_removed_row', 'owner_only',              'owner'),
    ('_apply_removed_row',    'owner_only',              'owner'),
    ('affinity_fold',        'owner_only',              'caller'),
    ('affinity_scores',      'owner_only',              'owner'),
    ('_affinity_dimensions',  'owner_only',              'owner'),
    ('rebuild_complementarity',   'owner_only',         'owner'),
    ('maintain_complementarity',  'owner_only',         'owner'),
    ('pause_complementarity',     'owner_only',         'owner'),
    ('journey_run_checks',   'owner_only',              'owner'),
    ('journey_run_purchases', 'owner_only',             'owner'),
    ('_subscription_customers', 'owner_only',            'owner'),
    ('_complement_product_orders', 'owner_only',        'owner'),
    ('apply_access_map',     'owner_only',              'owner'),
-- internal helpers: named with a leading underscore and free to change in any
-- release (docs/reference.md lists the stable surface).  A view's user needs
-- EXECUTE on the functions the view calls, so analysts keep it on the
-- caller-run helpers their reporting views call; no other role has any.
    ('_pseudonym',           'personalisation_analyst', 'caller'),
    ('_affinity_entries',    'personalisation_analyst', 'caller'),
    ('_affinity_key',        'personalisation_analyst', 'caller'),
    ('_attribution_window',  'personalisation_analyst', 'caller'),
    ('_holdout_arm',         'owner_only',              'owner');

-- apply_access_map() makes the schema's privileges what the access map says,
-- and refuses a function or view the map does not classify.  Nothing is left
-- to PUBLIC, which PostgreSQL grants EXECUTE on every new function: the
-- install script and every upgrade script call it as their last statement, so
-- the functions an upgrade adds are covered too.  (Default privileges cannot
-- do this confined to the schema: ALTER DEFAULT PRIVILEGES IN SCHEMA can only
-- add to the global defaults, and FOR ROLE would change every function the
-- owner creates in any schema.)  EXECUTE on the schema's functions is
-- revoked from the three roles before the map grants it, so a role keeps
-- nothing the map has stopped naming.
CREATE FUNCTION personalisation.apply_access_map() RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    entry record;
    target record;
    matched boolean;
    missing text;
BEGIN
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA personalisation
      FROM PUBLIC, personalisation_shop, personalisation_analyst, personalisation_sender;
    REVOKE ALL ON ALL TABLES IN SCHEMA personalisation FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA personalisation FROM PUBLIC;
    FOR entry IN SELECT m.* FROM personalisation.access_map m ORDER BY m.object_name, m.role_name LOOP
        matched := false;
        FOR target IN
            SELECT pg_catalog.format('personalisation.%I(%s)', p.proname,
                                     pg_catalog.pg_get_function_identity_arguments(p.oid)) AS signature
              FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
               AND p.proname OPERATOR(pg_catalog.=) entry.object_name
        LOOP
            matched := true;
            IF entry.runs_as OPERATOR(pg_catalog.=) 'owner' THEN
                EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp',
                                          target.signature);
            END IF;
            IF entry.role_name OPERATOR(pg_catalog.<>) 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', target.signature, entry.role_name);
            END IF;
        END LOOP;
        FOR target IN
            SELECT pg_catalog.format('personalisation.%I', c.relname) AS relation, c.relkind
              FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
               AND c.relname OPERATOR(pg_catalog.=) entry.object_name
               AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m}'::pg_catalog."char"[])
        LOOP
            matched := true;
            IF entry.role_name OPERATOR(pg_catalog.<>) 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT %s ON TABLE %s TO %I',
                                          CASE WHEN target.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog."char"[]) THEN 'SELECT'
                                               ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                                          target.relation, entry.role_name);
            END IF;
        END LOOP;
        IF NOT matched THEN
            RAISE EXCEPTION 'personalisation.access_map names "%", which is no function, table or view of schema personalisation',
                            entry.object_name
                  USING HINT = 'Correct or remove its line in the access map (sql/install/security.sql).';
        END IF;
    END LOOP;

    SELECT pg_catalog.string_agg(DISTINCT o.name, ', ') INTO missing
      FROM (SELECT p.proname::text AS name FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
            UNION ALL
            SELECT c.relname::text FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
               AND c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog."char"[])) o
     WHERE NOT EXISTS (SELECT FROM personalisation.access_map m WHERE m.object_name OPERATOR(pg_catalog.=) o.name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the access map does not say who may use: %', missing
              USING HINT = 'Add one line per name to the access map in sql/install/security.sql: the role that may use it, or owner_only.';
    END IF;
END
$$;

SELECT personalisation.apply_access_map();
