-- The send window stages outcomes and marks in one statement
-- (wb_send_window, sql/functions/060_send.sql); the staging function of
-- its own that 010 brought has no caller left.
DROP FUNCTION IF EXISTS wb_stage_outcomes(bigint[], text[], integer[], text[],
                                          double precision[], text);
