-- Fotoflo on Supabase, 8/8: favourites per person, and a person's picks sent as a collection.
-- Idempotent (IF NOT EXISTS, CREATE OR REPLACE). PostgresStore's favourites (dashboard/store/sql_favorites.py),
-- statement for statement.
--
-- Who marked what is the photographer's to see: row level security with no policy, so the anon key reads
-- none of it (the service role bypasses it, as everywhere). An image's deletion takes its marks along.

CREATE TABLE IF NOT EXISTS public.favorites (
    project  text NOT NULL REFERENCES public.projects(name),
    image_id text NOT NULL REFERENCES public.images(id) ON DELETE CASCADE,
    by_key   text NOT NULL,
    by_name  text NOT NULL,
    at       text NOT NULL,
    seq      bigint NOT NULL,
    PRIMARY KEY (project, image_id, by_key)
);
CREATE INDEX IF NOT EXISTS favorites_by_person ON public.favorites (project, by_key);
ALTER TABLE public.favorites ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.favorites FROM PUBLIC, anon, authenticated;
GRANT ALL ON public.favorites TO service_role;

-- `Favorites.set_favorite`: {"favorite", "change"}; the change null when it was already so.
CREATE OR REPLACE FUNCTION public.fotoflo_set_favorite(
    p_project text, p_image_id text, p_by text, p_by_key text, p_favorite boolean, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_cur favorites;
    v_found boolean;
    v_seq bigint;
BEGIN
    PERFORM fotoflo__lock(p_project);
    PERFORM fotoflo__require_images(p_project, ARRAY[p_image_id]);
    SELECT * INTO v_cur FROM favorites WHERE project = p_project AND image_id = p_image_id AND by_key = p_by_key;
    v_found := FOUND;
    IF v_found = p_favorite THEN
        RETURN jsonb_build_object('favorite', CASE WHEN v_found THEN jsonb_build_object(
            'image_id', v_cur.image_id, 'by', v_cur.by_name, 'by_key', v_cur.by_key, 'at', v_cur.at) END,
            'change', NULL);
    END IF;
    v_seq := fotoflo__next_seq(p_project);
    IF p_favorite THEN
        INSERT INTO favorites (project, image_id, by_key, by_name, at, seq)
        VALUES (p_project, p_image_id, p_by_key, p_by, p_now, v_seq);
    ELSE
        DELETE FROM favorites WHERE project = p_project AND image_id = p_image_id AND by_key = p_by_key;
    END IF;
    RETURN jsonb_build_object('favorite', CASE WHEN p_favorite THEN jsonb_build_object(
            'image_id', p_image_id, 'by', p_by, 'by_key', p_by_key, 'at', p_now) END,
        'change', fotoflo__record(p_project, v_seq, 'favorite.changed', p_now, NULL,
                                  jsonb_build_object('image_id', p_image_id, 'by', p_by, 'favorite', p_favorite)));
END $$;

-- `Favorites.submit_favorites`: {"collection", "changes"}: its `collection.saved`, then `favorites.submitted`.
CREATE OR REPLACE FUNCTION public.fotoflo_submit_favorites(
    p_project text, p_name text, p_image_ids text[], p_by text, p_id text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_saved jsonb;
BEGIN
    PERFORM fotoflo__lock(p_project);
    PERFORM fotoflo__require_images(p_project, p_image_ids);
    v_saved := fotoflo__create_collection(p_project, p_id, p_name, p_image_ids, NULL,
                                          jsonb_build_object('op', 'save', 'by', p_by), p_now);
    RETURN jsonb_build_object('collection', v_saved -> 'collection', 'changes', jsonb_build_array(v_saved -> 'change',
        fotoflo__record(p_project, fotoflo__next_seq(p_project), 'favorites.submitted', p_now, NULL,
                        jsonb_build_object('by', p_by, 'collection_id', p_id,
                                           'count', coalesce(array_length(p_image_ids, 1), 0)))));
END $$;

-- As in the security migration: the service role's only.
REVOKE EXECUTE ON FUNCTION public.fotoflo_set_favorite(text, text, text, text, boolean, text)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_set_favorite(text, text, text, text, boolean, text) TO service_role;
REVOKE EXECUTE ON FUNCTION public.fotoflo_submit_favorites(text, text, text[], text, text, text)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_submit_favorites(text, text, text[], text, text, text) TO service_role;

-- A server refuses a project without this migration (`SCHEMA_VERSION` in dashboard/supabase/store.py).
CREATE OR REPLACE FUNCTION public.fotoflo_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 6 $$;
