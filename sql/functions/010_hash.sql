-- Every function, trigger and view of the schema lives in sql/functions/,
-- each once, as it is now: `warmbench migrate` applies these files in name
-- order, in one transaction, after the numbered migrations (README
-- "Schema: migrations and functions"). Files come in dependency order: a
-- SQL-language function's body is checked against what exists when it is
-- created.

-- One-way address hashes, as kept in the suppression list after forget.

-- The address hash with the salt as an argument. A SQL function whose body
-- holds a sub-select is never inlined, so wb_email_hash ran as a function
-- call per row: 7 us a candidate, most of `enroll`'s audience scan at a
-- million. This one is a plain expression: set-based statements pass the
-- salt once (wb_hash_salt(), evaluated once per statement) and the planner
-- inlines the rest. wb_email_hash keeps its signature and result, and
-- is now defined through it, so the two cannot drift apart.
CREATE OR REPLACE FUNCTION wb_hash_salt() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT value FROM wb_settings WHERE key = 'hash_salt'
$$;

CREATE OR REPLACE FUNCTION wb_email_hash_salted(addr text, salt text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(salt || lower(btrim(addr)), 'UTF8')), 'hex')
$$;

-- The salted hash of an address (the installation's salt).
CREATE OR REPLACE FUNCTION wb_email_hash(addr text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT wb_email_hash_salted(addr, (SELECT value FROM wb_settings WHERE key = 'hash_salt'))
$$;
