"""A test-only trigger that stops a run at its k-th row written to a table: the run waits on an
advisory lock (TRIP_LOCK) the test holds, so the test can kill it, or overlap it, right there.
The k-th row is given as the trigger's argument; 0 never stops, and the sequence counts rows."""

TRIP_LOCK = 7007

TRIPWIRE = """
CREATE SCHEMA tripwire;
CREATE SEQUENCE tripwire.rows;
CREATE FUNCTION tripwire.trip() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF nextval('tripwire.rows') = TG_ARGV[0]::bigint THEN
        PERFORM pg_advisory_lock(7007);  -- held by the test: the run stops here
    END IF;
    RETURN NEW;
END
$$;
"""
