-- Fotoflo on Supabase, 9/9: comments on images, threads one level deep.
-- Idempotent (IF NOT EXISTS, CREATE OR REPLACE). PostgresStore's comments (dashboard/store/sql_comments.py),
-- statement for statement; the text is cleaned by the caller (dashboard.store.clean_comment).
--
-- Fotoflo's server reads and writes them with the service role; row level security with no policy, so the
-- anon key reads none of them (who wrote what is told through the server, which checks the share link).
-- An image's deletion takes its comments along.

CREATE TABLE IF NOT EXISTS public.comments (
    id          text PRIMARY KEY,
    project     text NOT NULL REFERENCES public.projects(name),
    image_id    text NOT NULL REFERENCES public.images(id) ON DELETE CASCADE,
    text        text NOT NULL,
    author_name text NOT NULL,
    author_key  text NOT NULL,
    reply_to    text,
    created_at  text NOT NULL,
    resolved    integer NOT NULL DEFAULT 0,
    seq         bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_by_image ON public.comments (project, image_id, seq);
ALTER TABLE public.comments ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.comments FROM PUBLIC, anon, authenticated;
GRANT ALL ON public.comments TO service_role;

-- A comment as the feed and the API carry it (no author key).
CREATE OR REPLACE FUNCTION public.fotoflo__comment(p_c public.comments) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object('id', p_c.id, 'image_id', p_c.image_id, 'project', p_c.project, 'text', p_c.text,
                              'author', p_c.author_name, 'author_key', p_c.author_key, 'reply_to', p_c.reply_to,
                              'created_at', p_c.created_at, 'resolved', p_c.resolved <> 0)
$$;

CREATE OR REPLACE FUNCTION public.fotoflo__comment_data(p_c public.comments) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT fotoflo__comment(p_c) - 'project' - 'author_key'
$$;

-- `Comments.add_comment`: {"comment", "change"}.
CREATE OR REPLACE FUNCTION public.fotoflo_add_comment(
    p_project text, p_image_id text, p_id text, p_text text, p_author text, p_author_key text, p_reply_to text,
    p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_parent comments;
    v_row comments;
    v_reply_to text := NULL;
    v_seq bigint;
BEGIN
    PERFORM fotoflo__lock(p_project);
    PERFORM fotoflo__require_images(p_project, ARRAY[p_image_id]);
    IF p_reply_to IS NOT NULL THEN
        SELECT * INTO v_parent FROM comments WHERE project = p_project AND image_id = p_image_id AND id = p_reply_to;
        IF NOT FOUND THEN
            PERFORM fotoflo__raise('invalid_value',
                to_jsonb(format('reply_to %L is not a comment of image %L', p_reply_to, p_image_id)));
        END IF;
        v_reply_to := coalesce(v_parent.reply_to, v_parent.id);  -- a reply to a reply answers the thread
    END IF;
    v_seq := fotoflo__next_seq(p_project);
    INSERT INTO comments (id, project, image_id, text, author_name, author_key, reply_to, created_at, resolved, seq)
    VALUES (p_id, p_project, p_image_id, p_text, p_author, p_author_key, v_reply_to, p_now, 0, v_seq)
    RETURNING * INTO v_row;
    RETURN jsonb_build_object('comment', fotoflo__comment(v_row),
        'change', fotoflo__record(p_project, v_seq, 'comment.created', p_now, NULL, fotoflo__comment_data(v_row)));
END $$;

-- `Comments.resolve_comment`: {"comment", "change"}; the change null when it already was so.
CREATE OR REPLACE FUNCTION public.fotoflo_resolve_comment(
    p_project text, p_image_id text, p_id text, p_resolved boolean, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_row comments;
BEGIN
    PERFORM fotoflo__lock(p_project);
    SELECT * INTO v_row FROM comments WHERE project = p_project AND image_id = p_image_id AND id = p_id;
    IF NOT FOUND THEN
        PERFORM fotoflo__raise('unknown_comment', to_jsonb(p_id));
    END IF;
    IF (v_row.resolved <> 0) = p_resolved THEN
        RETURN jsonb_build_object('comment', fotoflo__comment(v_row), 'change', NULL);
    END IF;
    UPDATE comments SET resolved = CASE WHEN p_resolved THEN 1 ELSE 0 END WHERE id = p_id RETURNING * INTO v_row;
    RETURN jsonb_build_object('comment', fotoflo__comment(v_row),
        'change', fotoflo__record(p_project, fotoflo__next_seq(p_project), 'comment.updated', p_now, NULL,
                                  fotoflo__comment_data(v_row)));
END $$;

-- `Comments.delete_comment`: {"comment", "change"}: the comment and its replies gone, one `comment.deleted`.
CREATE OR REPLACE FUNCTION public.fotoflo_delete_comment(p_project text, p_image_id text, p_id text, p_now text)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_row comments;
    v_ids jsonb;
BEGIN
    PERFORM fotoflo__lock(p_project);
    SELECT * INTO v_row FROM comments WHERE project = p_project AND image_id = p_image_id AND id = p_id;
    IF NOT FOUND THEN
        PERFORM fotoflo__raise('unknown_comment', to_jsonb(p_id));
    END IF;
    SELECT jsonb_build_array(p_id) || coalesce(jsonb_agg(id ORDER BY seq), '[]'::jsonb) INTO v_ids
    FROM comments WHERE project = p_project AND reply_to = p_id;
    DELETE FROM comments WHERE project = p_project AND reply_to = p_id;
    DELETE FROM comments WHERE id = p_id;
    RETURN jsonb_build_object('comment', fotoflo__comment(v_row),
        'change', fotoflo__record(p_project, fotoflo__next_seq(p_project), 'comment.deleted', p_now, NULL,
                                  jsonb_build_object('id', p_id, 'image_id', p_image_id, 'ids', v_ids)));
END $$;

-- As in the security migration: the service role's only.
REVOKE EXECUTE ON FUNCTION public.fotoflo_add_comment(text, text, text, text, text, text, text, text)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_add_comment(text, text, text, text, text, text, text, text) TO service_role;
REVOKE EXECUTE ON FUNCTION public.fotoflo_resolve_comment(text, text, text, boolean, text)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_resolve_comment(text, text, text, boolean, text) TO service_role;
REVOKE EXECUTE ON FUNCTION public.fotoflo_delete_comment(text, text, text, text) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_delete_comment(text, text, text, text) TO service_role;
REVOKE EXECUTE ON FUNCTION public.fotoflo__comment(public.comments), public.fotoflo__comment_data(public.comments)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo__comment(public.comments), public.fotoflo__comment_data(public.comments)
    TO service_role;

-- A server refuses a project without this migration (`SCHEMA_VERSION` in dashboard/supabase/store.py).
CREATE OR REPLACE FUNCTION public.fotoflo_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 7 $$;
