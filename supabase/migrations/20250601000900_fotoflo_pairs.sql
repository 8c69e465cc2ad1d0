-- Fotoflo on Supabase, 10/10: RAW + JPEG pairs (dashboard/pairs.py): a RAW and the JPEG of one capture
-- become one image with two files. Idempotent (IF NOT EXISTS, CREATE OR REPLACE).
-- PostgresStore's rules (dashboard/store/sql_images.py), statement for statement. The pairing rule
-- itself (same stem, one capture) is decided in Python (`SupabaseStore.add_image`), which names the
-- partner it chose; `fotoflo_add_image_paired` re-checks under the project's lock that nothing changed
-- since, and asks for a retry otherwise, so two files of a pair arriving at once still make one image.

-- `pair_key` (folder and stem) finds a file's partner; `raw_*` is a pair's RAW beside the JPEG shown.
ALTER TABLE public.images ADD COLUMN IF NOT EXISTS pair_key text;
ALTER TABLE public.images ADD COLUMN IF NOT EXISTS raw_sha256 text;
ALTER TABLE public.images ADD COLUMN IF NOT EXISTS raw_filename text;
ALTER TABLE public.images ADD COLUMN IF NOT EXISTS raw_size_bytes bigint;
ALTER TABLE public.images ADD COLUMN IF NOT EXISTS raw_format text;
CREATE INDEX IF NOT EXISTS images_by_pair_key ON public.images (project, pair_key) WHERE pair_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS images_by_raw_sha ON public.images (project, raw_sha256) WHERE raw_sha256 IS NOT NULL;

-- A pair's RAW is a file of a shared image too.
CREATE OR REPLACE FUNCTION public.fotoflo_shared_blob(p_name text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.image_versions v
        WHERE v.sha256 = split_part(p_name, '/', 3) AND public.fotoflo_shared(v.project))
    OR EXISTS (
        SELECT 1 FROM public.images i
        WHERE i.raw_sha256 = split_part(p_name, '/', 3) AND public.fotoflo_shared(i.project))
$$;

-- The image whose current version (or pair's RAW) has these bytes, else the newest image that had them before.
CREATE OR REPLACE FUNCTION public.fotoflo_find_by_sha(p_project text, p_sha256 text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(
        (SELECT to_jsonb(i) FROM images i
         WHERE i.project = p_project AND (i.sha256 = p_sha256 OR i.raw_sha256 = p_sha256) LIMIT 1),
        (SELECT to_jsonb(i) FROM image_versions v JOIN images i ON i.id = v.image_id
         WHERE v.project = p_project AND v.sha256 = p_sha256 ORDER BY v.seq DESC LIMIT 1))
$$;

-- The image whose current version or pair's RAW has these bytes (in the caller's transaction), or NULL.
CREATE OR REPLACE FUNCTION public.fotoflo__image_by_sha(p_project text, p_sha256 text) RETURNS public.images
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT * FROM images WHERE project = p_project AND (sha256 = p_sha256 OR raw_sha256 = p_sha256) LIMIT 1
$$;

-- `Store.add_image` without a `pair_key`: {"image", "change"}; "change" is null when the bytes are already there.
CREATE OR REPLACE FUNCTION public.fotoflo_add_image(p_image jsonb, p_device jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_project text := p_image ->> 'project';
    v_row images;
    v_seq bigint;
BEGIN
    INSERT INTO projects (name, created_at) VALUES (v_project, p_image ->> 'created_at') ON CONFLICT (name) DO NOTHING;
    PERFORM fotoflo__lock(v_project);
    v_row := fotoflo__image_by_sha(v_project, p_image ->> 'sha256');
    IF v_row.id IS NOT NULL THEN
        RETURN jsonb_build_object('image', to_jsonb(v_row), 'change', NULL);
    END IF;
    v_seq := fotoflo__next_seq(v_project);
    v_row := jsonb_populate_record(NULL::images, p_image || jsonb_build_object('seq', v_seq, 'version', 1));
    INSERT INTO images SELECT v_row.*;
    PERFORM fotoflo__insert_version(v_row, v_seq, v_row.created_at, p_device);
    RETURN jsonb_build_object('image', to_jsonb(v_row), 'change',
        fotoflo__record(v_project, v_seq, 'image.created', v_row.created_at, to_jsonb(v_row), '{}'));
END $$;

-- The image's next version, with its `image.updated` entry carrying `p_data` (in the caller's
-- transaction). A pair's RAW stays the image's unless `p_content` brings one (the JPEG joining a RAW).
DROP FUNCTION IF EXISTS public.fotoflo__next_version(public.images, jsonb, jsonb);
CREATE OR REPLACE FUNCTION public.fotoflo__next_version(
    p_image public.images, p_content jsonb, p_device jsonb, p_data jsonb
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_new images := p_image;
    v_seq bigint;
BEGIN
    v_new.filename := p_content ->> 'filename';
    v_new.sha256 := p_content ->> 'sha256';
    v_new.size_bytes := (p_content ->> 'size_bytes')::bigint;
    v_new.width := (p_content ->> 'width')::integer;
    v_new.height := (p_content ->> 'height')::integer;
    v_new.format := p_content ->> 'format';
    v_new.mime := p_content ->> 'mime';
    v_new.captured_at := p_content ->> 'captured_at';
    v_new.camera_make := p_content ->> 'camera_make';
    v_new.camera_model := p_content ->> 'camera_model';
    v_new.exif := coalesce(p_content -> 'exif', '{}');
    v_new.version := p_image.version + 1;
    IF p_content ->> 'raw_sha256' IS NOT NULL THEN
        v_new.raw_sha256 := p_content ->> 'raw_sha256';
        v_new.raw_filename := p_content ->> 'raw_filename';
        v_new.raw_size_bytes := (p_content ->> 'raw_size_bytes')::bigint;
        v_new.raw_format := p_content ->> 'raw_format';
    END IF;
    UPDATE images SET filename = v_new.filename, sha256 = v_new.sha256, size_bytes = v_new.size_bytes,
                      width = v_new.width, height = v_new.height, format = v_new.format, mime = v_new.mime,
                      captured_at = v_new.captured_at, camera_make = v_new.camera_make,
                      camera_model = v_new.camera_model, exif = v_new.exif, version = v_new.version,
                      raw_sha256 = v_new.raw_sha256, raw_filename = v_new.raw_filename,
                      raw_size_bytes = v_new.raw_size_bytes, raw_format = v_new.raw_format
    WHERE id = v_new.id;
    v_seq := fotoflo__next_seq(v_new.project);
    PERFORM fotoflo__insert_version(v_new, v_seq, p_content ->> 'created_at', p_device);
    RETURN jsonb_build_object('outcome', 'updated', 'image', to_jsonb(v_new), 'conflict_copy', NULL,
        'changes', jsonb_build_array(fotoflo__record(v_new.project, v_seq, 'image.updated',
                                                     p_content ->> 'created_at', to_jsonb(v_new), p_data)));
END $$;

-- `Store.add_version`: as before, with a pair's RAW counted as the image's bytes and left out of a conflict copy.
CREATE OR REPLACE FUNCTION public.fotoflo_add_version(
    p_project text, p_image_id text, p_content jsonb, p_base_sha256 text, p_device jsonb, p_copy_id text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_image images;
    v_other images;
    v_earlier jsonb;
    v_loser image_versions;
    v_updated jsonb;
    v_kept images;
    v_seq bigint;
BEGIN
    PERFORM fotoflo__lock(p_project);
    SELECT * INTO v_image FROM images WHERE id = p_image_id AND project = p_project;
    IF NOT FOUND THEN
        PERFORM fotoflo__raise('unknown_image', jsonb_build_array(p_image_id));
    END IF;
    v_other := fotoflo__image_by_sha(p_project, p_content ->> 'sha256');
    IF v_other.id IS NOT NULL THEN
        RETURN jsonb_build_object('outcome', 'unchanged', 'image', to_jsonb(v_other), 'conflict_copy', NULL,
                                  'changes', '[]'::jsonb);
    END IF;
    IF p_base_sha256 = v_image.sha256 THEN
        RETURN fotoflo__next_version(v_image, p_content, p_device, '{}');
    END IF;
    SELECT * INTO v_other FROM images WHERE project = p_project AND sha256 = p_base_sha256 AND conflict_of = v_image.id;
    IF FOUND THEN
        RETURN fotoflo__next_version(v_other, p_content, p_device, '{}');
    END IF;
    v_earlier := fotoflo_find_by_sha(p_project, p_content ->> 'sha256');
    IF v_earlier IS NOT NULL THEN
        RETURN jsonb_build_object('outcome', 'unchanged', 'image', v_earlier, 'conflict_copy', NULL,
                                  'changes', '[]'::jsonb);
    END IF;
    SELECT * INTO v_loser FROM image_versions WHERE image_id = v_image.id ORDER BY version DESC LIMIT 1;
    v_updated := fotoflo__next_version(v_image, p_content, p_device, '{}');
    v_seq := fotoflo__next_seq(p_project);
    v_kept := v_image;
    v_kept.id := p_copy_id;
    v_kept.filename := fotoflo__conflict_name(v_image.filename, v_loser.device_name, v_loser.created_at);
    v_kept.created_at := p_now;
    v_kept.seq := v_seq;
    v_kept.rating := 0;
    v_kept.flag := 'none';
    v_kept.label := 'none';
    v_kept.version := 1;
    v_kept.conflict_of := v_image.id;
    v_kept.raw_sha256 := NULL;  -- a pair's RAW stays with the image
    v_kept.raw_filename := NULL;
    v_kept.raw_size_bytes := NULL;
    v_kept.raw_format := NULL;
    INSERT INTO images SELECT v_kept.*;
    PERFORM fotoflo__insert_version(v_kept, v_seq, v_loser.created_at,
        CASE WHEN v_loser.device_id IS NULL THEN NULL
             ELSE jsonb_build_object('id', v_loser.device_id, 'name', coalesce(v_loser.device_name, '')) END);
    RETURN jsonb_build_object('outcome', 'conflict', 'image', v_updated -> 'image', 'conflict_copy', to_jsonb(v_kept),
        'changes', (v_updated -> 'changes')
                   || jsonb_build_array(fotoflo__record(p_project, v_seq, 'image.created', p_now, to_jsonb(v_kept), '{}')));
END $$;

-- `Store.add_image` with a `pair_key`: {"image", "change"} as `fotoflo_add_image`, or {"retry": true} when
-- the images of this key changed since the caller read them (up to `p_seen_seq`) and chose `p_partner_id`.
-- `p_role` is the new file's: 'raw' joins the partner as its RAW, 'jpeg' becomes its next version.
CREATE OR REPLACE FUNCTION public.fotoflo_add_image_paired(
    p_image jsonb, p_device jsonb, p_pair_key text, p_role text, p_partner_id text, p_partner_sha256 text,
    p_seen_seq bigint
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_project text := p_image ->> 'project';
    v_row images;
    v_seq bigint;
    v_updated jsonb;
BEGIN
    INSERT INTO projects (name, created_at) VALUES (v_project, p_image ->> 'created_at') ON CONFLICT (name) DO NOTHING;
    PERFORM fotoflo__lock(v_project);
    v_row := fotoflo__image_by_sha(v_project, p_image ->> 'sha256');
    IF v_row.id IS NOT NULL THEN
        RETURN jsonb_build_object('image', to_jsonb(v_row), 'change', NULL);
    END IF;
    PERFORM 1 FROM images WHERE project = v_project AND pair_key = p_pair_key AND seq > p_seen_seq;
    IF FOUND THEN
        RETURN jsonb_build_object('retry', true);
    END IF;
    IF p_partner_id IS NOT NULL THEN
        SELECT * INTO v_row FROM images
        WHERE id = p_partner_id AND project = v_project AND sha256 = p_partner_sha256 AND raw_sha256 IS NULL;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('retry', true);
        END IF;
        IF p_role = 'raw' THEN
            v_row.raw_sha256 := p_image ->> 'sha256';
            v_row.raw_filename := p_image ->> 'filename';
            v_row.raw_size_bytes := (p_image ->> 'size_bytes')::bigint;
            v_row.raw_format := p_image ->> 'format';
            UPDATE images SET raw_sha256 = v_row.raw_sha256, raw_filename = v_row.raw_filename,
                              raw_size_bytes = v_row.raw_size_bytes, raw_format = v_row.raw_format
            WHERE id = v_row.id;
            v_seq := fotoflo__next_seq(v_project);
            RETURN jsonb_build_object('image', to_jsonb(v_row), 'change',
                fotoflo__record(v_project, v_seq, 'image.updated', p_image ->> 'created_at', to_jsonb(v_row),
                                '{"paired": "raw"}'::jsonb));
        END IF;
        v_updated := fotoflo__next_version(v_row, p_image || jsonb_build_object(
            'raw_sha256', v_row.sha256, 'raw_filename', v_row.filename, 'raw_size_bytes', v_row.size_bytes,
            'raw_format', v_row.format), p_device, '{"paired": "jpeg"}'::jsonb);
        RETURN jsonb_build_object('image', v_updated -> 'image', 'change', v_updated -> 'changes' -> 0);
    END IF;
    v_seq := fotoflo__next_seq(v_project);
    v_row := jsonb_populate_record(NULL::images,
        p_image || jsonb_build_object('seq', v_seq, 'version', 1, 'pair_key', p_pair_key));
    INSERT INTO images SELECT v_row.*;
    PERFORM fotoflo__insert_version(v_row, v_seq, v_row.created_at, p_device);
    RETURN jsonb_build_object('image', to_jsonb(v_row), 'change',
        fotoflo__record(v_project, v_seq, 'image.created', v_row.created_at, to_jsonb(v_row), '{}'));
END $$;

-- As in the security migration: the service role's only (`fotoflo_shared_blob` stays the policies').
REVOKE EXECUTE ON FUNCTION public.fotoflo__image_by_sha(text, text) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo__image_by_sha(text, text) TO service_role;
REVOKE EXECUTE ON FUNCTION public.fotoflo__next_version(public.images, jsonb, jsonb, jsonb)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo__next_version(public.images, jsonb, jsonb, jsonb) TO service_role;
REVOKE EXECUTE ON FUNCTION public.fotoflo_add_image_paired(jsonb, jsonb, text, text, text, text, bigint)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.fotoflo_add_image_paired(jsonb, jsonb, text, text, text, text, bigint)
    TO service_role;

-- A server refuses a project without this migration (`SCHEMA_VERSION` in dashboard/supabase/store.py).
CREATE OR REPLACE FUNCTION public.fotoflo_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 8 $$;

NOTIFY pgrst, 'reload schema';
