-- POST /ats/events is stored by one function per event type
-- (sql/functions/070_ats.sql) instead of wb_ats_event, which ran the
-- enrollment statement the daemon sent it as text (EXECUTE).
DROP FUNCTION IF EXISTS wb_ats_event(text, text, jsonb, text[], text, text, jsonb);
