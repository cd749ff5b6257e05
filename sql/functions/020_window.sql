-- Send windows and step delays.

-- Next opening of a send window at or after ts: days is a bitmask
-- (bit 0 = Monday .. bit 6 = Sunday), start/end are local times in zone tz.
-- PostgreSQL does the time-zone maths (DST included).
CREATE OR REPLACE FUNCTION wb_next_in_window(ts timestamptz, tz text, days integer,
                                             w_start time, w_end time) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    local_ts timestamp := ts AT TIME ZONE tz;
    d date := local_ts::date;
    i integer;
    cand timestamp;
BEGIN
    IF days = 0 THEN
        RETURN NULL;
    END IF;
    FOR i IN 0..7 LOOP
        IF (days >> (extract(isodow FROM d + i)::integer - 1)) & 1 = 1 THEN
            IF i = 0 THEN
                IF local_ts::time >= w_start AND local_ts::time < w_end THEN
                    RETURN ts;
                ELSIF local_ts::time < w_start THEN
                    RETURN (d + w_start) AT TIME ZONE tz;
                END IF;
            ELSE
                cand := (d + i) + w_start;
                RETURN cand AT TIME ZONE tz;
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END
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

-- The first moment at or after ts inside a sequence's window (def is the
-- sequence file as stored in sequences.definition), in the window's zone or
-- the candidate's (cand_tz) when the window says "candidate".
CREATE OR REPLACE FUNCTION wb_seq_next_due(ts timestamptz, def jsonb, cand_tz text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN def->'window' IS NULL THEN ts ELSE
        wb_next_in_window(ts,
            CASE WHEN coalesce(def->'window'->>'timezone', 'candidate') = 'candidate'
                 THEN coalesce(cand_tz, def->'window'->>'fallback_timezone', 'UTC')
                 ELSE def->'window'->>'timezone' END,
            wb_window_days(def->'window'->'days'),
            coalesce((def->'window'->>'start')::time, '00:00'),
            coalesce((def->'window'->>'end')::time, '24:00'))
    END
$$;
