-- Fotoflo on Supabase: share links' download rules and watermarks in the auth store (`SupabaseAuthStore`,
-- dashboard/supabase/auth.py), after 20250601001000_fotoflo_auth.sql. Idempotent (IF NOT EXISTS, DROP … IF
-- EXISTS, CREATE OR REPLACE). PostgreSQL's step 9 (dashboard/store/pg_migrations.py), column for column: a
-- link's download rule (`original`, `preview`, `none`; links made before keep `original`), its watermark text,
-- the SHA-256 of its watermark PNG, and a version that moves on with each change of either; the PNG itself
-- (as the decoder worker re-encoded it) in a table of its own, so that reading links never carries it.
-- Locked as the rest of `fotoflo_auth`: the service role's only, row level security on with no policy.

ALTER TABLE fotoflo_auth.shares ADD COLUMN IF NOT EXISTS download text NOT NULL DEFAULT 'original';
ALTER TABLE fotoflo_auth.shares ADD COLUMN IF NOT EXISTS watermark_text text;
ALTER TABLE fotoflo_auth.shares ADD COLUMN IF NOT EXISTS watermark_version integer NOT NULL DEFAULT 0;
ALTER TABLE fotoflo_auth.shares ADD COLUMN IF NOT EXISTS watermark_png_sha text;
CREATE TABLE IF NOT EXISTS fotoflo_auth.share_watermarks (
    share_id text PRIMARY KEY REFERENCES fotoflo_auth.shares (id),
    png      bytea NOT NULL
);

ALTER TABLE fotoflo_auth.share_watermarks ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON fotoflo_auth.share_watermarks FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON fotoflo_auth.share_watermarks TO service_role;

-- `create_share` with the link's rules (checked by the server, `check_share_rules`). The auth migration's
-- version, without them, goes: PostgREST must find one function of this name. (A rerun of that migration
-- makes it again, and this one drops it again.)
DROP FUNCTION IF EXISTS public.fotoflo_auth_create_share(
    text, text, text, text, text, text, text, double precision, double precision
);
CREATE OR REPLACE FUNCTION public.fotoflo_auth_create_share(
    p_id text, p_hash text, p_name text, p_role text, p_project text, p_collection_id text, p_password text,
    p_created_at double precision, p_expires_at double precision, p_download text, p_watermark_text text,
    p_watermark_version integer
) RETURNS void
LANGUAGE sql SET search_path = fotoflo_auth, pg_temp AS $$
    INSERT INTO fotoflo_auth.shares (id, hash, name, role, project, collection_id, password, created_at, expires_at,
                                     download, watermark_text, watermark_version)
    VALUES (p_id, p_hash, p_name, p_role, p_project, p_collection_id, p_password, p_created_at, p_expires_at,
            p_download, p_watermark_text, p_watermark_version)
$$;

-- `shares`, `get_share`, `find_share`: as before (every column but the hash, so the rules too; never a PNG).
CREATE OR REPLACE FUNCTION public.fotoflo_auth_shares(p_id text, p_hash text, p_project text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = fotoflo_auth, pg_temp AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(s) - 'hash' ORDER BY s.created_at, s.id), '[]'::jsonb)
    FROM fotoflo_auth.shares s
    WHERE (p_id IS NULL OR s.id = p_id) AND (p_hash IS NULL OR s.hash = p_hash)
      AND (p_project IS NULL OR s.project = p_project)
$$;

-- `set_share_watermark_png`: the link's PNG (base64, as JSON carries it; NULL takes it away), its SHA-256 and
-- a new watermark version, in one transaction; the link as `fotoflo_auth_shares` shows it, or NULL if none.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_set_share_watermark_png(p_id text, p_png_base64 text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = fotoflo_auth, pg_temp AS $$
DECLARE
    v_png bytea := decode(p_png_base64, 'base64');
    v_share jsonb;
BEGIN
    UPDATE fotoflo_auth.shares s
    SET watermark_png_sha = encode(sha256(v_png), 'hex'), watermark_version = watermark_version + 1
    WHERE id = p_id
    RETURNING to_jsonb(s) - 'hash' INTO v_share;
    IF v_share IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM fotoflo_auth.share_watermarks WHERE share_id = p_id;
    IF v_png IS NOT NULL THEN
        INSERT INTO fotoflo_auth.share_watermarks (share_id, png) VALUES (p_id, v_png);
    END IF;
    RETURN v_share;
END $$;

-- `share_watermark_png`: the link's PNG in base64, or NULL.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_share_watermark_png(p_id text) RETURNS text
LANGUAGE sql STABLE SET search_path = fotoflo_auth, pg_temp AS $$
    SELECT encode(w.png, 'base64') FROM fotoflo_auth.share_watermarks w WHERE w.share_id = p_id
$$;

-- Version 2: share links' rules (`AUTH_SCHEMA_VERSION` in dashboard/supabase/auth.py).
CREATE OR REPLACE FUNCTION public.fotoflo_auth_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 2 $$;

-- As in the auth migration: every `fotoflo_auth_*` function is the service role's only.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname LIKE 'fotoflo\_auth\_%'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, anon, authenticated', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', f);
    END LOOP;
END $$;

-- PostgREST must see `fotoflo_auth_create_share`'s new arguments (Supabase reloads after DDL; this asks anyway).
NOTIFY pgrst, 'reload schema';
