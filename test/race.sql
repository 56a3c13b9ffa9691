-- Included by the concurrency pgTAP files: two dblink connections to this
-- database (race1 and race2), and race(queries), which runs queries[1] on
-- race1 and queries[2] on race2 at the same instant and returns their
-- answers.  A barrier (an advisory lock this session holds until both
-- connections wait on it) makes the two start together.

-- Opens race1 and race2, running each of the settings statements on both.
CREATE FUNCTION pg_temp.race_connect(settings text[] DEFAULT '{}') RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    conn text;
    setting text;
BEGIN
    FOREACH conn IN ARRAY ARRAY['race1', 'race2'] LOOP
        PERFORM dblink_connect(conn, format('dbname=%s host=%s port=%s user=%s', current_database(),
                                            current_setting('unix_socket_directories'),
                                            current_setting('port'), current_user));
        FOREACH setting IN ARRAY settings LOOP
            PERFORM dblink_exec(conn, setting);
        END LOOP;
    END LOOP;
END
$$;

-- Runs the two queries (each returning one text column) at once and returns their answers.
CREATE FUNCTION pg_temp.race(queries text[]) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    answers text[] := '{}';
    answer text;
    conns text[] := ARRAY['race1', 'race2'];
BEGIN
    PERFORM pg_advisory_lock(64046);
    FOR i IN 1..2 LOOP
        PERFORM dblink_send_query(conns[i],
            'SELECT (' || queries[i] || ')::text FROM (SELECT pg_advisory_xact_lock_shared(64046)) AS barrier');
    END LOOP;
    -- bounded wait until both are queued behind the barrier
    FOR i IN 1..1001 LOOP
        EXIT WHEN (SELECT count(*) FROM pg_locks
                    WHERE locktype = 'advisory' AND objid = 64046 AND objsubid = 1 AND NOT granted) = 2;
        IF i = 1001 THEN
            RAISE EXCEPTION 'the two connections never both reached the barrier';
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    PERFORM pg_advisory_unlock(64046);
    FOR i IN 1..2 LOOP
        SELECT r INTO answer FROM dblink_get_result(conns[i]) AS t(r text);
        answers := answers || answer;
        PERFORM * FROM dblink_get_result(conns[i]) AS t(r text);
    END LOOP;
    RETURN answers;
END
$$;

-- Closes race1 and race2.
CREATE FUNCTION pg_temp.race_disconnect() RETURNS void LANGUAGE sql AS $$
    SELECT dblink_disconnect('race1'), dblink_disconnect('race2')
$$;
