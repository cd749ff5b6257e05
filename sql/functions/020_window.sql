-- Send windows and step delays.

-- Next opening of a send window at or after ts: days is a bitmask
-- (bit 0 = Monday .. bit 6 = Sunday), start/end are local times in zone tz,
-- closed the local dates on which the window stays shut (holidays).
-- PostgreSQL does the time-zone maths (DST included).
CREATE OR REPLACE FUNCTION wb_next_open(ts timestamptz, tz text, days integer,
                                        w_start time, w_end time, closed date[])
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    local_ts timestamp := ts AT TIME ZONE tz;
    d date := local_ts::date;
    i integer;
BEGIN
    IF days = 0 THEN
        RETURN NULL;
    END IF;
    -- Each closed day can push the opening by at most a week.
    FOR i IN 0..7 * (coalesce(cardinality(closed), 0) + 1) LOOP
        IF (days >> (extract(isodow FROM d + i)::integer - 1)) & 1 = 1
           AND NOT (d + i = ANY (coalesce(closed, '{}'))) THEN
            IF i = 0 THEN
                IF local_ts::time >= w_start AND local_ts::time < w_end THEN
                    RETURN ts;
                ELSIF local_ts::time < w_start THEN
                    RETURN (d + w_start) AT TIME ZONE tz;
                END IF;
            ELSE
                RETURN ((d + i) + w_start) AT TIME ZONE tz;
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The same without holidays (the enrollment paths' first step).
CREATE OR REPLACE FUNCTION wb_next_in_window(ts timestamptz, tz text, days integer,
                                             w_start time, w_end time) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT wb_next_open(ts, tz, days, w_start, w_end, '{}'::date[])
$$;

-- "30m", "12h", "3d", "2w", "45s" → interval (validated by check-config).
CREATE OR REPLACE FUNCTION wb_duration(d text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT make_interval(secs => substring(d FROM '^[0-9]+')::double precision *
        CASE right(d, 1) WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600
                         WHEN 'd' THEN 86400 WHEN 'w' THEN 604800 END)
$$;

-- Bitmask of a window's day names (bit 0 = Monday); all days when absent.
CREATE OR REPLACE FUNCTION wb_window_days(days jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN days IS NULL OR jsonb_typeof(days) <> 'array' THEN 127
           ELSE coalesce((SELECT sum(1 << (array_position(
                    ARRAY['mon','tue','wed','thu','fri','sat','sun'], lower(x)) - 1))::integer
                FROM jsonb_array_elements_text(days) x
                WHERE array_position(ARRAY['mon','tue','wed','thu','fri','sat','sun'], lower(x)) IS NOT NULL), 0)
           END
$$;

-- The zone a stored definition's window is timed in: its "timezone"
-- (UTC when absent, as the config loader, enroll and the ATS path read it),
-- or for "candidate" the candidate's own (cand_tz), else the window's
-- fallback_timezone, else UTC.
CREATE OR REPLACE FUNCTION wb_window_zone(def jsonb, cand_tz text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN coalesce(def->'window'->>'timezone', 'UTC') = 'candidate'
                THEN coalesce(cand_tz, def->'window'->>'fallback_timezone', 'UTC')
                ELSE coalesce(def->'window'->>'timezone', 'UTC') END
$$;

-- The days a window is closed for a candidate of this country (ISO 3166-1
-- alpha-2, any case; NULL: none): the config loader stores the holiday
-- files' days as window.closed_days (everyone) and
-- window.closed_days_by_country (lib/config/sequence.c).
CREATE OR REPLACE FUNCTION wb_window_closed(win jsonb, country text) RETURNS date[]
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN win ? 'closed_days' THEN ARRAY(
        SELECT x::date FROM jsonb_array_elements_text(win->'closed_days') x
        UNION ALL
        SELECT x::date FROM jsonb_array_elements_text(
            coalesce(win->'closed_days_by_country'->upper(btrim(country)), '[]')) x)
    ELSE '{}'::date[] END
$$;

-- The first moment at or after ts inside a sequence's window (def is the
-- sequence file as stored in sequences.definition), in the window's zone
-- (wb_window_zone), skipping the holidays of everyone and of the
-- candidate's country.
CREATE OR REPLACE FUNCTION wb_seq_next_due(ts timestamptz, def jsonb, cand_tz text,
                                           country text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN def->'window' IS NULL THEN ts ELSE
        wb_next_open(ts, wb_window_zone(def, cand_tz),
            wb_window_days(def->'window'->'days'),
            coalesce((def->'window'->>'start')::time, '00:00'),
            coalesce((def->'window'->>'end')::time, '24:00'),
            wb_window_closed(def->'window', country))
    END
$$;

-- The same for a candidate whose country is not known: the holidays of
-- everyone only.
CREATE OR REPLACE FUNCTION wb_seq_next_due(ts timestamptz, def jsonb, cand_tz text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT wb_seq_next_due(ts, def, cand_tz, NULL)
$$;

-- When step (0-based index into def->'steps') falls due, counted from base
-- (the previous step's send, or the enrollment): its "after" as a delay
-- then the window's next opening, or for "3bd" the third window day after
-- base's local day that is no holiday, at base's local time of day (the
-- window's start when that time is outside its hours).
CREATE OR REPLACE FUNCTION wb_step_due(base timestamptz, def jsonb, step integer,
                                       cand_tz text, country text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    after text := def->'steps'->step->>'after';
    zone text;
    days integer;
    closed date[];
    w_start time;
    w_end time;
    n integer;
    d date;
    t time;
    guard integer := 0;
BEGIN
    IF after IS NULL OR after !~ '^[0-9]+bd$' THEN
        RETURN wb_seq_next_due(base + coalesce(wb_duration(after), interval '0'), def, cand_tz,
                               country);
    END IF;
    zone := wb_window_zone(def, cand_tz);
    days := wb_window_days(def->'window'->'days');
    IF days = 0 THEN
        RETURN NULL;
    END IF;
    closed := wb_window_closed(def->'window', country);
    w_start := coalesce((def->'window'->>'start')::time, '00:00');
    w_end := coalesce((def->'window'->>'end')::time, '24:00');
    n := substring(after FROM '^[0-9]+')::integer;
    d := (base AT TIME ZONE zone)::date;
    t := (base AT TIME ZONE zone)::time;
    WHILE n > 0 AND guard < 7 * (n + cardinality(closed) + 1) LOOP
        d := d + 1;
        guard := guard + 1;
        IF (days >> (extract(isodow FROM d)::integer - 1)) & 1 = 1
           AND NOT (d = ANY (closed)) THEN
            n := n - 1;
        END IF;
    END LOOP;
    IF t < w_start OR t >= w_end THEN
        t := w_start;
    END IF;
    RETURN wb_next_open((d + t) AT TIME ZONE zone, zone, days, w_start, w_end, closed);
END
$$;
