-- Fotoflo on Supabase: the auth store (`SupabaseAuthStore`, dashboard/supabase/auth.py): API tokens, share
-- links with the guests their sessions act as, browser sessions and collection owners, shared by every server
-- on the project and by `fotoflo token|share --supabase-url …`. Idempotent. The tables are PostgreSQL's
-- `auth_*` (dashboard/store/pg_migrations.py, steps 5 and 6), column for column.
--
-- Only the service role (Fotoflo's servers and CLI, `--supabase-key`) reads or writes them:
-- - they are in a schema of their own, `fotoflo_auth`, which PostgREST does not serve (do not add it to
--   Project Settings → API → Exposed schemas) and on which anon and authenticated have no USAGE;
-- - row level security is on and there is no policy, so a privilege granted by mistake still shows no row
--   (the service role bypasses row level security, as on every Supabase project);
-- - PUBLIC, anon and authenticated hold no privilege on them, nor on the functions below, which are the
--   only way in over the API (in `public`, so that PostgREST's `rpc` reaches them) and the service role's only.
-- Secrets are never stored: tokens, share links and sessions only as their SHA-256 (`hash`), share passwords
-- only as scrypt hashes, both made by the server before anything is sent (dashboard/auth/store.py), as in the
-- SQLite and PostgreSQL auth stores. Times are seconds since the epoch, as there.

CREATE SCHEMA IF NOT EXISTS fotoflo_auth;
REVOKE ALL ON SCHEMA fotoflo_auth FROM PUBLIC, anon, authenticated;
GRANT USAGE ON SCHEMA fotoflo_auth TO service_role;

CREATE TABLE IF NOT EXISTS fotoflo_auth.tokens (
    id         text PRIMARY KEY,
    hash       text NOT NULL UNIQUE,
    name       text NOT NULL,
    role       text NOT NULL,
    project    text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision,
    revoked_at double precision
);
CREATE TABLE IF NOT EXISTS fotoflo_auth.shares (
    id            text PRIMARY KEY,
    hash          text NOT NULL UNIQUE,
    name          text NOT NULL,
    role          text NOT NULL,
    project       text NOT NULL,
    collection_id text,
    password      text,
    created_at    double precision NOT NULL,
    expires_at    double precision,
    revoked_at    double precision
);
CREATE TABLE IF NOT EXISTS fotoflo_auth.sessions (
    hash        text PRIMARY KEY,
    kind        text NOT NULL,
    subject     text NOT NULL,
    csrf        text NOT NULL,
    created_at  double precision NOT NULL,
    expires_at  double precision NOT NULL,
    guest_id    text,
    guest_name  text,
    guest_email text
);
CREATE INDEX IF NOT EXISTS sessions_by_subject ON fotoflo_auth.sessions (kind, subject);
CREATE TABLE IF NOT EXISTS fotoflo_auth.collection_owners (
    project       text NOT NULL,
    collection_id text NOT NULL,
    owner         text NOT NULL,
    PRIMARY KEY (project, collection_id)
);

ALTER TABLE fotoflo_auth.tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE fotoflo_auth.shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE fotoflo_auth.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE fotoflo_auth.collection_owners ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON ALL TABLES IN SCHEMA fotoflo_auth FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fotoflo_auth TO service_role;

-- `AuthStore.create_token`: the server made the secret; only its hash comes here.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_create_token(
    p_id text, p_hash text, p_name text, p_role text, p_project text, p_created_at double precision,
    p_expires_at double precision
) RETURNS void
LANGUAGE sql SET search_path = fotoflo_auth, pg_temp AS $$
    INSERT INTO fotoflo_auth.tokens (id, hash, name, role, project, created_at, expires_at)
    VALUES (p_id, p_hash, p_name, p_role, p_project, p_created_at, p_expires_at)
$$;

-- `tokens`, `get_token` (`p_id`), `find_token` (`p_hash`): a JSON array by age, without the hashes.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_tokens(p_id text, p_hash text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = fotoflo_auth, pg_temp AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(t) - 'hash' ORDER BY t.created_at, t.id), '[]'::jsonb)
    FROM fotoflo_auth.tokens t
    WHERE (p_id IS NULL OR t.id = p_id) AND (p_hash IS NULL OR t.hash = p_hash)
$$;

-- `revoke_token`: whether an active token was revoked; its sessions end in the same transaction.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_revoke_token(p_id text, p_now double precision) RETURNS boolean
LANGUAGE plpgsql SET search_path = fotoflo_auth, pg_temp AS $$
DECLARE
    v_changed integer;
BEGIN
    UPDATE fotoflo_auth.tokens SET revoked_at = p_now WHERE id = p_id AND revoked_at IS NULL;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    DELETE FROM fotoflo_auth.sessions WHERE kind = 'token' AND subject = p_id;
    RETURN v_changed > 0;
END $$;

-- `create_share`: the link's hash, and its password's scrypt hash (or NULL).
CREATE OR REPLACE FUNCTION public.fotoflo_auth_create_share(
    p_id text, p_hash text, p_name text, p_role text, p_project text, p_collection_id text, p_password text,
    p_created_at double precision, p_expires_at double precision
) RETURNS void
LANGUAGE sql SET search_path = fotoflo_auth, pg_temp AS $$
    INSERT INTO fotoflo_auth.shares (id, hash, name, role, project, collection_id, password, created_at, expires_at)
    VALUES (p_id, p_hash, p_name, p_role, p_project, p_collection_id, p_password, p_created_at, p_expires_at)
$$;

-- `shares` (`p_project` or all), `get_share` (`p_id`), `find_share` (`p_hash`): by age, without the hashes.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_shares(p_id text, p_hash text, p_project text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = fotoflo_auth, pg_temp AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(s) - 'hash' ORDER BY s.created_at, s.id), '[]'::jsonb)
    FROM fotoflo_auth.shares s
    WHERE (p_id IS NULL OR s.id = p_id) AND (p_hash IS NULL OR s.hash = p_hash)
      AND (p_project IS NULL OR s.project = p_project)
$$;

-- `revoke_share`: as `revoke_token`, for a link and the sessions (its guests') it signed in.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_revoke_share(p_id text, p_now double precision) RETURNS boolean
LANGUAGE plpgsql SET search_path = fotoflo_auth, pg_temp AS $$
DECLARE
    v_changed integer;
BEGIN
    UPDATE fotoflo_auth.shares SET revoked_at = p_now WHERE id = p_id AND revoked_at IS NULL;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    DELETE FROM fotoflo_auth.sessions WHERE kind = 'share' AND subject = p_id;
    RETURN v_changed > 0;
END $$;

-- `create_session`: drops the expired sessions and adds this one (its secret's hash), in one transaction.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_create_session(
    p_hash text, p_kind text, p_subject text, p_csrf text, p_now double precision, p_expires_at double precision,
    p_guest_id text, p_guest_name text, p_guest_email text
) RETURNS void
LANGUAGE sql SET search_path = fotoflo_auth, pg_temp AS $$
    DELETE FROM fotoflo_auth.sessions WHERE expires_at <= p_now;
    INSERT INTO fotoflo_auth.sessions (hash, kind, subject, csrf, created_at, expires_at, guest_id, guest_name,
                                       guest_email)
    VALUES (p_hash, p_kind, p_subject, p_csrf, p_now, p_expires_at, p_guest_id, p_guest_name, p_guest_email)
$$;

-- `find_session`: the unexpired session with this hash, or NULL.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_find_session(p_hash text, p_now double precision) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = fotoflo_auth, pg_temp AS $$
    SELECT to_jsonb(s) - 'hash' FROM fotoflo_auth.sessions s WHERE s.hash = p_hash AND s.expires_at > p_now
$$;

CREATE OR REPLACE FUNCTION public.fotoflo_auth_delete_session(p_hash text) RETURNS void
LANGUAGE sql SET search_path = fotoflo_auth, pg_temp AS $$
    DELETE FROM fotoflo_auth.sessions WHERE hash = p_hash
$$;

CREATE OR REPLACE FUNCTION public.fotoflo_auth_set_collection_owner(p_project text, p_collection_id text, p_owner text)
RETURNS void
LANGUAGE sql SET search_path = fotoflo_auth, pg_temp AS $$
    INSERT INTO fotoflo_auth.collection_owners (project, collection_id, owner) VALUES (p_project, p_collection_id, p_owner)
    ON CONFLICT (project, collection_id) DO UPDATE SET owner = excluded.owner
$$;

-- `collection_owner` (`p_collection_id`) and `collections_owned` (`p_owner`): [{collection_id, owner}, …].
CREATE OR REPLACE FUNCTION public.fotoflo_auth_collection_owners(p_project text, p_collection_id text, p_owner text)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = fotoflo_auth, pg_temp AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('collection_id', o.collection_id, 'owner', o.owner)), '[]'::jsonb)
    FROM fotoflo_auth.collection_owners o
    WHERE o.project = p_project AND (p_collection_id IS NULL OR o.collection_id = p_collection_id)
      AND (p_owner IS NULL OR o.owner = p_owner)
$$;

-- A server refuses a project without this migration (`AUTH_SCHEMA_VERSION` in dashboard/supabase/auth.py);
-- a number of its own, so that the image store's migrations can move on without it.
CREATE OR REPLACE FUNCTION public.fotoflo_auth_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 1 $$;

-- As in the security migration: every function here is the service role's only (Supabase grants new
-- functions to PUBLIC, anon and authenticated by default).
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
