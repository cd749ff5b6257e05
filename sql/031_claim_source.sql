-- wb_claim also returns the candidate's source, which the Article 14
-- notice names (GDPR 14(2)(f)); a changed RETURNS TABLE needs the old
-- function gone before sql/functions/060_send.sql makes the new one.
DROP FUNCTION IF EXISTS wb_claim(text, integer, integer, integer, text, integer, text);
