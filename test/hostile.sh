#!/usr/bin/env bash
# The hostile pass (test/run.sh runs it last, in the running test instance):
# the pgTAP suite once more, in a database where every common operator and
# function the extension might call unqualified has a shadow in public that
# raises when the extension reaches it, and where nothing the extension runs
# has its search path pinned by the catalog:
#
#   - the extension is reinstalled, owned by the superuser hostile_owner, so
#     its background worker connects as that role;
#   - test/hostile_shadows.sql creates the shadows (operators on text, int4,
#     int8, numeric, float8, timestamptz, interval, jsonb, arrays and mixed
#     pairs such as (text, bigint); now(), lower, hashtext, count, sum,
#     array_agg, unnest ...), each armed by the setting hostile.armed;
#   - the database's search_path is public, pg_catalog: public FIRST, so a
#     shadow wins even over a built-in of the same signature;
#   - every function of the extension is armed and its SET search_path =
#     pg_catalog, pg_temp replaced by public, pg_catalog, as if it had been
#     declared without the pin (the statements of its C code must then pin
#     the path themselves); the sessions of hostile_owner, the worker's,
#     are armed too.
#
# First each shadow is proved reachable: its unqualified probe, run armed in
# a plain session, must raise.  Then the pgTAP files run (but the ones named
# in SKIP), and no shadow may have been reached: every armed call is counted
# in a sequence, so one swallowed by a test's exception handler still fails
# the pass.  Usage: hostile.sh DATABASE (PGHOST, PGPORT, PGUSER set).
set -euo pipefail
DB=$1
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)

# security_roles.sql and security_roles_upgrade.sql check the pinned search
# paths this pass replaces;
# security_search_path.sql installs shadows of its own in public;
# ingest_direct.sql and outbox_direct.sql define a shop's own expression and
# partial indexes (lower(x), x = 'y'), shop code that the extension's
# writes evaluate: under this database's search_path they name shadows;
# ingest_bulk.sql checks statements over 30,000 sessions with joins on the
# test's own `=`, which here is a shadow with no hash or merge support, so
# its checks alone would run for hours (the C statements it drives are
# pinned like every other).
SKIP=(security_roles.sql security_roles_upgrade.sql security_search_path.sql ingest_direct.sql outbox_direct.sql ingest_bulk.sql)

psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
DROP EXTENSION IF EXISTS personalisation CASCADE;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'hostile_owner') THEN
        CREATE ROLE hostile_owner SUPERUSER LOGIN;
    END IF;
END $$;
SET ROLE hostile_owner;
CREATE EXTENSION personalisation;
RESET ROLE;
SQL
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$REPO_DIR/test/hostile_shadows.sql"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
SET search_path = pg_catalog, pg_temp;
DO \$\$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT p.oid::pg_catalog.regprocedure AS signature FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET hostile.armed = on SET search_path = public, pg_catalog',
                                  f.signature);
    END LOOP;
END
\$\$;
ALTER DATABASE "$DB" SET search_path = public, pg_catalog;
ALTER ROLE hostile_owner IN DATABASE "$DB" SET hostile.armed = on;
SQL

echo "== hostile pass: every shadow is what a plain query resolves to"
psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
SET client_min_messages = error;
SET log_min_messages = error;
DO $$
DECLARE
    p record;
    probe text;
    message text;
    missed text[] := '{}';
    probes int := 0;
BEGIN
    FOR p IN SELECT * FROM public.hostile_probes ORDER BY shadow LOOP
        probes := probes + 1;
        probe := 'SELECT ' || p.probe;
        BEGIN
            -- armed for the probe only: this block's own operators reach the shadows too
            PERFORM pg_catalog.set_config('hostile.armed', 'on', true);
            EXECUTE probe;
            PERFORM pg_catalog.set_config('hostile.armed', 'off', true);
            missed := missed || p.shadow;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
            IF message <> 'hostile shadow reached: ' || p.shadow THEN
                missed := missed || (p.shadow || ': ' || message);
            END IF;
        END;
    END LOOP;
    IF cardinality(missed) > 0 THEN
        RAISE EXCEPTION 'shadows a plain query does not reach: %', array_to_string(missed, '; ');
    END IF;
    IF probes < 300 THEN
        RAISE EXCEPTION 'only % shadows were installed', probes;
    END IF;
    -- the worker connects as the extension's owner: it must be the armed role
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e
                    WHERE e.extname OPERATOR(pg_catalog.=) 'personalisation'
                      AND e.extowner OPERATOR(pg_catalog.=) 'hostile_owner'::pg_catalog.regrole) THEN
        RAISE EXCEPTION 'the extension is not owned by hostile_owner';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_proc f
                WHERE f.pronamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
                  AND NOT ('hostile.armed=on' OPERATOR(pg_catalog.=) ANY (f.proconfig)
                           AND 'search_path=public, pg_catalog' OPERATOR(pg_catalog.=) ANY (f.proconfig))) THEN
        RAISE EXCEPTION 'a function of the extension is not armed with the hostile search path';
    END IF;
END
$$;
ALTER SEQUENCE public.hostile_hits RESTART;
SELECT pg_catalog.count(*) OPERATOR(pg_catalog.||) ' shadows, each reached by its unqualified probe' FROM public.hostile_probes;
SQL

echo "== hostile pass: pgTAP"
files=()
for f in "$REPO_DIR"/test/pgtap/*.sql; do
    skip=0
    for s in "${SKIP[@]}"; do [ "$(basename "$f")" = "$s" ] && skip=1; done
    [ $skip -eq 0 ] && files+=("$f")
done
status=0
log="${CLUSTER_DIR:-/nonexistent}/server.log"
log_start=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
pg_prove --dbname "$DB" "${files[@]}" || status=1

hits=$(psql -X -At -d "$DB" -c "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.hostile_hits")
if [ "$hits" != "0" ]; then
    echo "the extension reached a hostile shadow $hits times:"
    tail -c +"$log_start" "$log" 2>/dev/null | grep -oE 'hostile shadow reached: .*' | sort | uniq -c | head -20 || true
    status=1
fi
[ $status -eq 0 ] && echo "== hostile pass: no statement of the extension reached a shadow"
exit $status
