-- The privileges an upgraded installation ends with are the access map's,
-- as a fresh one's are: a 0.1.0 installation, in a database of its own
-- reached through dblink, is brought to the current version by the upgrade
-- scripts; then every function of its schema (the ones the upgrade scripts
-- added included) grants EXECUTE to nothing for PUBLIC and to no role the
-- map does not name for it, and has the privileges, SECURITY DEFINER and
-- search_path a fresh installation (this database) gives it.
BEGIN;
SELECT plan(4);

CREATE FUNCTION pg_temp.conninfo(db text) RETURNS text LANGUAGE sql AS $$
    SELECT format('dbname=%s host=%s port=%s user=%s', db, current_setting('unix_socket_directories'),
                  current_setting('port'), current_user)
$$;
-- Every function of the schema: its signature, grantees other than its
-- owner, SECURITY DEFINER and settings, one text per function.
CREATE TEMP VIEW sec_function_privileges AS
SELECT p.oid::regprocedure::text || ' ' || coalesce((
           SELECT string_agg(a.grantee::regrole::text || '=' || a.privilege_type, ',' ORDER BY a.grantee::regrole::text)
             FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
            WHERE a.grantee <> p.proowner), '') || ' ' || p.prosecdef || ' ' || coalesce(p.proconfig::text, '') AS entry
  FROM pg_proc p WHERE p.pronamespace = 'personalisation'::regnamespace;
-- The functions that grant EXECUTE to PUBLIC or to a role the map does not name for them.
CREATE TEMP VIEW sec_unmapped_grants AS
SELECT p.proname::text || ' to ' || CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grant_
  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace = 'personalisation'::regnamespace AND a.grantee <> p.proowner
   AND NOT EXISTS (SELECT FROM personalisation.access_map m
                    WHERE m.object_name = p.proname AND m.role_name = a.grantee::regrole::text);

SELECT dblink_exec(pg_temp.conninfo(current_database()), 'DROP DATABASE IF EXISTS personalisation_upgraded WITH (FORCE)');
SELECT dblink_exec(pg_temp.conninfo(current_database()), 'CREATE DATABASE personalisation_upgraded');
SELECT dblink_connect('upgraded', pg_temp.conninfo('personalisation_upgraded'));
SELECT dblink_exec('upgraded', $$CREATE EXTENSION personalisation VERSION '0.1.0'$$);
SELECT lives_ok($$SELECT dblink_exec('upgraded', 'ALTER EXTENSION personalisation UPDATE')$$,
                'a 0.1.0 installation updates to the current version');
SELECT is((SELECT extversion FROM dblink('upgraded', $$SELECT extversion FROM pg_extension WHERE extname = 'personalisation'$$)
             AS t(extversion text)),
          (SELECT extversion FROM pg_extension WHERE extname = 'personalisation'), 'to the version installed here');
SELECT dblink_exec('upgraded', (SELECT 'CREATE TEMP VIEW sec_unmapped_grants AS ' || pg_get_viewdef('sec_unmapped_grants')));
SELECT dblink_exec('upgraded', (SELECT 'CREATE TEMP VIEW sec_function_privileges AS ' || pg_get_viewdef('sec_function_privileges')));
SELECT is((SELECT array_agg(g ORDER BY g) FROM dblink('upgraded', 'SELECT grant_ FROM sec_unmapped_grants') AS t(g text)),
          NULL, 'no function of the upgraded schema grants EXECUTE to PUBLIC or to a role the access map does not name for it');
SELECT is((SELECT array_agg(e ORDER BY e) FROM dblink('upgraded', 'SELECT entry FROM sec_function_privileges') AS t(e text)),
          (SELECT array_agg(entry ORDER BY entry) FROM sec_function_privileges),
          'every function has the privileges and settings of a fresh installation');

SELECT dblink_disconnect('upgraded');
SELECT dblink_exec(pg_temp.conninfo(current_database()), 'DROP DATABASE personalisation_upgraded WITH (FORCE)');

SELECT * FROM finish();
ROLLBACK;
