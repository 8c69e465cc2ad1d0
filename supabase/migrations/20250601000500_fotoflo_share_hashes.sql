-- Fotoflo on Supabase, 6/6: share tokens are kept as SHA-256 hashes, never as they are. Idempotent.
--
-- Until now `shares.token` held each token as given, so whoever could read the table (a backup, a
-- dump, a leaked service key, a support session) held working tokens. Now only `token_sha256`
-- (hex) is kept: the policies hash the `x-fotoflo-share` header of each request and compare. A
-- token is 16 characters or more of randomness, so a plain SHA-256 is enough (no salt to look up).
--
-- Writing shares stays as before: `INSERT INTO shares (token, project, ...)` hashes the token and
-- keeps NULL in `token` (a trigger); or insert `token_sha256` yourself, computed where the token
-- was made, and the token never reaches the database at all. Rows kept from before are hashed here.
-- `token` stays as a write-only column, so the earlier migrations can run again unchanged.

-- The hash of a token as the policies compare it. Built in (PostgreSQL 11+): no extension needed.
CREATE OR REPLACE FUNCTION public.fotoflo_share_hash(p_token text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog AS $$
    SELECT encode(sha256(convert_to(p_token, 'UTF8')), 'hex')
$$;

ALTER TABLE public.shares ADD COLUMN IF NOT EXISTS token_sha256 text;

-- The key was the token itself: it moves to the hash.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
               WHERE c.conrelid = 'public.shares'::regclass AND c.conname = 'shares_pkey' AND a.attname = 'token') THEN
        ALTER TABLE public.shares DROP CONSTRAINT shares_pkey;
    END IF;
END $$;
ALTER TABLE public.shares ALTER COLUMN token DROP NOT NULL;

-- What was kept in plain text: hashed, and forgotten.
UPDATE public.shares SET token_sha256 = public.fotoflo_share_hash(token), token = NULL WHERE token IS NOT NULL;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'public.shares'::regclass
                   AND conname = 'shares_pkey') THEN
        ALTER TABLE public.shares ADD CONSTRAINT shares_pkey PRIMARY KEY (token_sha256);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'public.shares'::regclass
                   AND conname = 'shares_token_sha256_hex') THEN
        ALTER TABLE public.shares ADD CONSTRAINT shares_token_sha256_hex CHECK (token_sha256 ~ '^[0-9a-f]{64}$');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'public.shares'::regclass
                   AND conname = 'shares_token_not_kept') THEN
        ALTER TABLE public.shares ADD CONSTRAINT shares_token_not_kept CHECK (token IS NULL);
    END IF;
END $$;

-- A token written in plain text is hashed on its way in (and must still be 16 characters or more).
CREATE OR REPLACE FUNCTION public.fotoflo_shares_hash_token() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.token IS NOT NULL THEN
        IF length(NEW.token) < 16 THEN
            RAISE EXCEPTION 'a share token must be at least 16 characters' USING ERRCODE = 'check_violation';
        END IF;
        NEW.token_sha256 := public.fotoflo_share_hash(NEW.token);
        NEW.token := NULL;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS fotoflo_shares_hash_token ON public.shares;
CREATE TRIGGER fotoflo_shares_hash_token BEFORE INSERT OR UPDATE ON public.shares
    FOR EACH ROW EXECUTE FUNCTION public.fotoflo_shares_hash_token();

-- The policies' test (see the security migration), now on the hash of the header.
CREATE OR REPLACE FUNCTION public.fotoflo_shared(p_project text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.shares s
        WHERE s.project = p_project
          AND s.token_sha256 = public.fotoflo_share_hash(
                nullif(current_setting('request.headers', true), '')::json ->> 'x-fotoflo-share')
          AND (s.expires_at IS NULL OR s.expires_at > now()))
$$;

-- As in the security migration: the service role's, except the policies' own.
REVOKE EXECUTE ON FUNCTION public.fotoflo_share_hash(text), public.fotoflo_shares_hash_token()
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_share_hash(text), public.fotoflo_shares_hash_token() TO service_role;
GRANT EXECUTE ON FUNCTION public.fotoflo_shared(text) TO anon, authenticated, service_role;

-- A server refuses a project without this migration (`SCHEMA_VERSION` in dashboard/supabase/store.py).
CREATE OR REPLACE FUNCTION public.fotoflo_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 4 $$;
