-- Fotoflo on Supabase, 7/8: a preview made after its image was published is announced on the feed.
-- Idempotent (CREATE OR REPLACE).
--
-- A large JPEG is published as soon as its thumbnail exists; its preview is made right after, and
-- `fotoflo_announce_preview` writes the `image.updated` entry (data {"made": "preview"}) that tells the
-- open lightboxes and walls to load it. The image row does not change. PostgresStore's
-- `announce_preview`, statement for statement.

-- `Store.announce_preview`: the change, or null when the image is gone or its bytes are others by now.
CREATE OR REPLACE FUNCTION public.fotoflo_announce_preview(
    p_project text, p_image_id text, p_sha256 text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_cur images;
BEGIN
    PERFORM fotoflo__lock(p_project);
    SELECT * INTO v_cur FROM images WHERE id = p_image_id AND project = p_project;
    IF NOT FOUND OR v_cur.sha256 <> p_sha256 THEN
        RETURN NULL;
    END IF;
    RETURN fotoflo__record(p_project, fotoflo__next_seq(p_project), 'image.updated', p_now, to_jsonb(v_cur),
                           '{"made": "preview"}'::jsonb);
END $$;

-- As in the security migration: the service role's only.
REVOKE EXECUTE ON FUNCTION public.fotoflo_announce_preview(text, text, text, text) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_announce_preview(text, text, text, text) TO service_role;

-- A server refuses a project without this migration (`SCHEMA_VERSION` in dashboard/supabase/store.py).
CREATE OR REPLACE FUNCTION public.fotoflo_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 5 $$;
