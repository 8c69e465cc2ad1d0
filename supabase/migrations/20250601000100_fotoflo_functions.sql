-- Fotoflo on Supabase, 2/5: every write as one database function, called through PostgREST
-- (`rpc`), so that it is one transaction: PostgREST cannot hold a transaction across requests.
-- Idempotent (CREATE OR REPLACE).
--
-- The rules are PostgresStore's (dashboard/store/postgres.py), statement for statement: each write
-- starts by locking its project's row, which serializes a project's writes and holds the feed's
-- counter, so sequence numbers are gap-free and seq N+1 commits after seq N. Callers pass the
-- time (`p_now`) and new ids, so records look the same on every store. Errors are raised with
-- HINT 'fotoflo', MESSAGE the error's name and DETAIL its argument as JSON; SupabaseStore turns
-- them back into the Store's exceptions.

CREATE OR REPLACE FUNCTION public.fotoflo_schema_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 3 $$;

CREATE OR REPLACE FUNCTION public.fotoflo__raise(p_code text, p_detail jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = p_code, DETAIL = coalesce(p_detail::text, 'null'), HINT = 'fotoflo';
END $$;

CREATE OR REPLACE FUNCTION public.fotoflo__lock(p_project text) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM 1 FROM projects WHERE name = p_project FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM fotoflo__raise('unknown_project', to_jsonb(p_project));
    END IF;
END $$;

CREATE OR REPLACE FUNCTION public.fotoflo__next_seq(p_project text) RETURNS bigint
LANGUAGE sql SET search_path = public, pg_temp AS $$
    UPDATE projects SET last_seq = last_seq + 1 WHERE name = p_project RETURNING last_seq
$$;

-- Write one feed entry; returns it as the wire form of `Change` (`image` is the image as written).
CREATE OR REPLACE FUNCTION public.fotoflo__record(
    p_project text, p_seq bigint, p_kind text, p_created_at text, p_image jsonb, p_data jsonb
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO changes (project, seq, kind, created_at, image_id, data)
    VALUES (p_project, p_seq, p_kind, p_created_at, p_image ->> 'id', coalesce(p_data, '{}'));
    RETURN jsonb_build_object('project', p_project, 'seq', p_seq, 'kind', p_kind, 'created_at', p_created_at,
                              'image', p_image, 'data', coalesce(p_data, '{}'));
END $$;

CREATE OR REPLACE FUNCTION public.fotoflo__insert_version(
    p_image public.images, p_seq bigint, p_created_at text, p_device jsonb
) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    INSERT INTO image_versions (image_id, version, project, sha256, filename, size_bytes, width, height, format,
                                mime, created_at, seq, device_id, device_name)
    VALUES (p_image.id, p_image.version, p_image.project, p_image.sha256, p_image.filename, p_image.size_bytes,
            p_image.width, p_image.height, p_image.format, p_image.mime, p_created_at, p_seq,
            p_device ->> 'id', p_device ->> 'name')
$$;

-- The image whose current version has these bytes, else the newest image that had them before.
CREATE OR REPLACE FUNCTION public.fotoflo_find_by_sha(p_project text, p_sha256 text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce(
        (SELECT to_jsonb(i) FROM images i WHERE i.project = p_project AND i.sha256 = p_sha256),
        (SELECT to_jsonb(i) FROM image_versions v JOIN images i ON i.id = v.image_id
         WHERE v.project = p_project AND v.sha256 = p_sha256 ORDER BY v.seq DESC LIMIT 1))
$$;

CREATE OR REPLACE FUNCTION public.fotoflo_ensure_project(p_project text, p_created_at text) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    INSERT INTO projects (name, created_at) VALUES (p_project, p_created_at) ON CONFLICT (name) DO NOTHING
$$;

-- `Store.add_image`: {"image", "change"}; "change" is null when the bytes are already an image.
CREATE OR REPLACE FUNCTION public.fotoflo_add_image(p_image jsonb, p_device jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_project text := p_image ->> 'project';
    v_row images;
    v_seq bigint;
BEGIN
    INSERT INTO projects (name, created_at) VALUES (v_project, p_image ->> 'created_at') ON CONFLICT (name) DO NOTHING;
    PERFORM fotoflo__lock(v_project);
    SELECT * INTO v_row FROM images WHERE project = v_project AND sha256 = p_image ->> 'sha256';
    IF FOUND THEN
        RETURN jsonb_build_object('image', to_jsonb(v_row), 'change', NULL);
    END IF;
    v_seq := fotoflo__next_seq(v_project);
    v_row := jsonb_populate_record(NULL::images, p_image || jsonb_build_object('seq', v_seq, 'version', 1));
    INSERT INTO images SELECT v_row.*;
    PERFORM fotoflo__insert_version(v_row, v_seq, v_row.created_at, p_device);
    RETURN jsonb_build_object('image', to_jsonb(v_row), 'change',
        fotoflo__record(v_project, v_seq, 'image.created', v_row.created_at, to_jsonb(v_row), '{}'));
END $$;

-- The image's next version, with its `image.updated` entry (in the caller's transaction).
CREATE OR REPLACE FUNCTION public.fotoflo__next_version(p_image public.images, p_content jsonb, p_device jsonb)
RETURNS jsonb
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
    UPDATE images SET filename = v_new.filename, sha256 = v_new.sha256, size_bytes = v_new.size_bytes,
                      width = v_new.width, height = v_new.height, format = v_new.format, mime = v_new.mime,
                      captured_at = v_new.captured_at, camera_make = v_new.camera_make,
                      camera_model = v_new.camera_model, exif = v_new.exif, version = v_new.version
    WHERE id = v_new.id;
    v_seq := fotoflo__next_seq(v_new.project);
    PERFORM fotoflo__insert_version(v_new, v_seq, p_content ->> 'created_at', p_device);
    RETURN jsonb_build_object('outcome', 'updated', 'image', to_jsonb(v_new), 'conflict_copy', NULL,
        'changes', jsonb_build_array(fotoflo__record(v_new.project, v_seq, 'image.updated',
                                                     p_content ->> 'created_at', to_jsonb(v_new), '{}')));
END $$;

-- `name (conflict DEVICE YYYY-MM-DD HHMMSS).ext`, as `dashboard.store.conflict_name` makes it.
CREATE OR REPLACE FUNCTION public.fotoflo__conflict_name(p_filename text, p_device_name text, p_created_at text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_dot integer := strpos(reverse(p_filename), '.');
    v_stem text := p_filename;
    v_ext text := '';
    v_tail text;
BEGIN
    IF v_dot > 0 AND v_dot < length(p_filename) THEN
        v_stem := left(p_filename, length(p_filename) - v_dot);
        v_ext := right(p_filename, v_dot - 1);
    END IF;
    v_tail := format(' (conflict %s %s %s%s%s)', coalesce(nullif(p_device_name, ''), 'unknown device'),
                     substr(p_created_at, 1, 10), substr(p_created_at, 12, 2), substr(p_created_at, 15, 2),
                     substr(p_created_at, 18, 2));
    RETURN CASE WHEN v_ext <> '' THEN v_stem || v_tail || '.' || v_ext ELSE v_stem || v_tail END;
END $$;

-- `Store.add_version`: {"outcome", "image", "conflict_copy", "changes"}; the rules in their order.
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
    SELECT * INTO v_other FROM images WHERE project = p_project AND sha256 = p_content ->> 'sha256';
    IF FOUND THEN
        RETURN jsonb_build_object('outcome', 'unchanged', 'image', to_jsonb(v_other), 'conflict_copy', NULL,
                                  'changes', '[]'::jsonb);
    END IF;
    IF p_base_sha256 = v_image.sha256 THEN
        RETURN fotoflo__next_version(v_image, p_content, p_device);
    END IF;
    SELECT * INTO v_other FROM images WHERE project = p_project AND sha256 = p_base_sha256 AND conflict_of = v_image.id;
    IF FOUND THEN
        RETURN fotoflo__next_version(v_other, p_content, p_device);
    END IF;
    v_earlier := fotoflo_find_by_sha(p_project, p_content ->> 'sha256');
    IF v_earlier IS NOT NULL THEN
        RETURN jsonb_build_object('outcome', 'unchanged', 'image', v_earlier, 'conflict_copy', NULL,
                                  'changes', '[]'::jsonb);
    END IF;
    -- Both sides changed the same base: the newer upload becomes current, and the version it would
    -- have replaced is kept as an image of its own (inserted after the update, so the UNIQUE
    -- (project, sha256) of current versions holds at every statement).
    SELECT * INTO v_loser FROM image_versions WHERE image_id = v_image.id ORDER BY version DESC LIMIT 1;
    v_updated := fotoflo__next_version(v_image, p_content, p_device);
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
    INSERT INTO images SELECT v_kept.*;
    PERFORM fotoflo__insert_version(v_kept, v_seq, v_loser.created_at,
        CASE WHEN v_loser.device_id IS NULL THEN NULL
             ELSE jsonb_build_object('id', v_loser.device_id, 'name', coalesce(v_loser.device_name, '')) END);
    RETURN jsonb_build_object('outcome', 'conflict', 'image', v_updated -> 'image', 'conflict_copy', to_jsonb(v_kept),
        'changes', (v_updated -> 'changes')
                   || jsonb_build_array(fotoflo__record(p_project, v_seq, 'image.created', p_now, to_jsonb(v_kept), '{}')));
END $$;

-- `Store.set_rating`: {"image", "change"}; "change" is null when nothing changed.
CREATE OR REPLACE FUNCTION public.fotoflo_set_rating(
    p_project text, p_image_id text, p_rating integer, p_flag text, p_label text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_cur images;
    v_new images;
BEGIN
    PERFORM fotoflo__lock(p_project);
    SELECT * INTO v_cur FROM images WHERE id = p_image_id AND project = p_project;
    IF NOT FOUND THEN
        PERFORM fotoflo__raise('unknown_image', jsonb_build_array(p_image_id));
    END IF;
    v_new := v_cur;
    v_new.rating := coalesce(p_rating, v_cur.rating);
    v_new.flag := coalesce(p_flag, v_cur.flag);
    v_new.label := coalesce(p_label, v_cur.label);
    IF (v_new.rating, v_new.flag, v_new.label) = (v_cur.rating, v_cur.flag, v_cur.label) THEN
        RETURN jsonb_build_object('image', to_jsonb(v_cur), 'change', NULL);
    END IF;
    UPDATE images SET rating = v_new.rating, flag = v_new.flag, label = v_new.label WHERE id = v_new.id;
    RETURN jsonb_build_object('image', to_jsonb(v_new), 'change',
        fotoflo__record(p_project, fotoflo__next_seq(p_project), 'rating.changed', p_now, NULL,
                        jsonb_build_object('image_id', v_new.id, 'rating', v_new.rating, 'flag', v_new.flag,
                                           'label', v_new.label)));
END $$;

-- -- collections ----------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION public.fotoflo__ids(p_ids jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(t.id ORDER BY t.n), '{}') FROM jsonb_array_elements_text(p_ids) WITH ORDINALITY AS t(id, n)
$$;

CREATE OR REPLACE FUNCTION public.fotoflo__without(p_ids text[], p_gone text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(t.id ORDER BY t.n), '{}') FROM unnest(p_ids) WITH ORDINALITY AS t(id, n)
    WHERE NOT (t.id = ANY (p_gone))
$$;

CREATE OR REPLACE FUNCTION public.fotoflo__insert_at(p_ids text[], p_new text[], p_index integer) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_ids[1:p_index], '{}') || p_new || coalesce(p_ids[p_index + 1:], '{}')
$$;

-- The collection as `CollectionRecord` reads it (`cover_image_id` is the effective cover), or null.
CREATE OR REPLACE FUNCTION public.fotoflo__collection(p_project text, p_id text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object(
        'id', c.id, 'project', c.project, 'name', c.name, 'image_ids', to_jsonb(c.image_ids),
        'cover_image_id', CASE WHEN c.cover_image_id = ANY (c.image_ids) THEN c.cover_image_id ELSE c.image_ids[1] END,
        'created_at', c.created_at, 'updated_at', c.updated_at, 'version', c.version, 'seq', c.seq,
        'deleted', c.deleted_at IS NOT NULL)
    FROM fotoflo_collections c WHERE c.id = p_id AND c.project = p_project
$$;

-- What a collection event carries besides its op (`CollectionRecord.card`).
CREATE OR REPLACE FUNCTION public.fotoflo__card(p_c jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('collection_id', p_c -> 'id', 'name', p_c -> 'name',
                              'count', jsonb_array_length(p_c -> 'image_ids'), 'cover_image_id', p_c -> 'cover_image_id',
                              'version', p_c -> 'version', 'created_at', p_c -> 'created_at',
                              'updated_at', p_c -> 'updated_at', 'deleted', p_c -> 'deleted')
$$;

CREATE OR REPLACE FUNCTION public.fotoflo__name_taken(p_project text, p_name text, p_exclude text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM collections WHERE project = p_project AND name = p_name AND deleted_at IS NULL
                   AND id IS DISTINCT FROM p_exclude)
$$;

-- `name`, or "name (2)", "name (3)"…: the first one no other live collection of the project has.
CREATE OR REPLACE FUNCTION public.fotoflo__free_name(p_project text, p_name text, p_exclude text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_match text[];
    v_stem text;
    v_n integer := 2;
BEGIN
    IF NOT fotoflo__name_taken(p_project, p_name, p_exclude) THEN
        RETURN p_name;
    END IF;
    v_match := regexp_match(p_name, '^(.*) \(([0-9]+)\)$');
    v_stem := coalesce(v_match[1], p_name);
    WHILE fotoflo__name_taken(p_project, format('%s (%s)', v_stem, v_n), p_exclude) LOOP
        v_n := v_n + 1;
    END LOOP;
    RETURN format('%s (%s)', v_stem, v_n);
END $$;

CREATE OR REPLACE FUNCTION public.fotoflo__require_images(p_project text, p_ids text[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_missing jsonb;
BEGIN
    SELECT jsonb_agg(t.id ORDER BY t.n) INTO v_missing FROM unnest(p_ids) WITH ORDINALITY AS t(id, n)
    WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.project = p_project AND i.id = t.id);
    IF v_missing IS NOT NULL THEN
        PERFORM fotoflo__raise('unknown_image', v_missing);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION public.fotoflo__write_items(p_id text, p_ids text[]) RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    DELETE FROM collection_items WHERE collection_id = p_id;
    INSERT INTO collection_items (collection_id, image_id, position)
    SELECT p_id, t.image_id, t.n - 1 FROM unnest(p_ids) WITH ORDINALITY AS t(image_id, n);
$$;

CREATE OR REPLACE FUNCTION public.fotoflo__create_collection(
    p_project text, p_id text, p_name text, p_ids text[], p_cover text, p_op jsonb, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_seq bigint := fotoflo__next_seq(p_project);
    v_rec jsonb;
BEGIN
    INSERT INTO collections (id, project, name, cover_image_id, created_at, updated_at, version, seq, deleted_at)
    VALUES (p_id, p_project, fotoflo__free_name(p_project, p_name), p_cover, p_now, p_now, 1, v_seq, NULL);
    PERFORM fotoflo__write_items(p_id, p_ids);
    v_rec := fotoflo__collection(p_project, p_id);
    RETURN jsonb_build_object('collection', v_rec, 'change',
        fotoflo__record(p_project, v_seq, 'collection.saved', p_now, NULL,
                        p_op || fotoflo__card(v_rec) || jsonb_build_object('image_ids', v_rec -> 'image_ids')));
END $$;

-- `Store.save_collection`: {"collection", "change"}. The caller has cleaned the name and the ids.
CREATE OR REPLACE FUNCTION public.fotoflo_save_collection(
    p_project text, p_name text, p_image_ids text[], p_id text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM fotoflo__lock(p_project);
    PERFORM fotoflo__require_images(p_project, p_image_ids);
    RETURN fotoflo__create_collection(p_project, p_id, p_name, p_image_ids, NULL, '{"op": "save"}', p_now);
END $$;

-- `Store.duplicate_collection`: {"collection", "change"}; a null name makes "Name copy".
CREATE OR REPLACE FUNCTION public.fotoflo_duplicate_collection(
    p_project text, p_collection_id text, p_name text, p_id text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_src jsonb;
    v_cover text;
BEGIN
    PERFORM fotoflo__lock(p_project);
    v_src := fotoflo__collection(p_project, p_collection_id);
    IF v_src IS NULL THEN
        PERFORM fotoflo__raise('unknown_collection', to_jsonb(p_collection_id));
    END IF;
    IF (v_src ->> 'deleted')::boolean THEN
        PERFORM fotoflo__raise('collection_deleted', to_jsonb(p_collection_id));
    END IF;
    SELECT cover_image_id INTO v_cover FROM collections WHERE id = p_collection_id;
    RETURN fotoflo__create_collection(p_project, p_id, coalesce(p_name, left(v_src ->> 'name', 190) || ' copy'),
        fotoflo__ids(v_src -> 'image_ids'), v_cover,
        jsonb_build_object('op', 'duplicate', 'source_id', v_src -> 'id'), p_now);
END $$;

-- `Store.edit_collection`: {"collection", "change"}; "change" is null for an edit that changes nothing.
-- The caller has checked the op and cleaned the name and ids; the edit is resolved here against
-- the collection as this transaction finds it, as PostgresStore._resolve does.
CREATE OR REPLACE FUNCTION public.fotoflo_edit_collection(
    p_project text, p_collection_id text, p_op text, p_image_ids text[], p_before text, p_index integer,
    p_name text, p_image_id text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_cur jsonb;
    v_ids text[];
    v_deleted boolean;
    v_name text;
    v_cover text;
    v_resolved jsonb;
    v_changed text[];
    v_rest text[];
    v_index integer;
    v_new text[];
    v_rec jsonb;
BEGIN
    PERFORM fotoflo__lock(p_project);
    v_cur := fotoflo__collection(p_project, p_collection_id);
    IF v_cur IS NULL THEN
        PERFORM fotoflo__raise('unknown_collection', to_jsonb(p_collection_id));
    END IF;
    v_deleted := (v_cur ->> 'deleted')::boolean;
    IF v_deleted AND p_op NOT IN ('delete', 'undelete') THEN
        PERFORM fotoflo__raise('collection_deleted', to_jsonb(p_collection_id));
    END IF;
    SELECT name, cover_image_id INTO v_name, v_cover FROM collections WHERE id = p_collection_id;
    v_ids := fotoflo__ids(v_cur -> 'image_ids');

    -- resolve: the edit as it applies now (the op's fields of its change), or null for a no-op
    IF p_op = 'delete' THEN
        v_resolved := CASE WHEN v_deleted THEN NULL ELSE '{}'::jsonb END;
    ELSIF p_op = 'undelete' THEN
        v_resolved := CASE WHEN v_deleted THEN '{}'::jsonb ELSE NULL END;
    ELSIF p_op = 'rename' THEN
        IF p_name IS DISTINCT FROM v_name THEN
            v_resolved := jsonb_build_object('name', fotoflo__free_name(p_project, p_name, p_collection_id));
            IF v_resolved ->> 'name' = v_name THEN
                v_resolved := NULL;
            END IF;
        END IF;
    ELSIF p_op = 'cover' THEN
        IF p_image_id IS NOT NULL THEN
            PERFORM fotoflo__require_images(p_project, ARRAY[p_image_id]);
            IF NOT (p_image_id = ANY (v_ids)) THEN
                PERFORM fotoflo__raise('not_in_collection', to_jsonb(p_image_id));
            END IF;
        END IF;
        IF p_image_id IS DISTINCT FROM v_cover THEN
            v_resolved := jsonb_build_object('cover', p_image_id);
        END IF;
    ELSIF p_op IN ('add', 'remove', 'move') THEN
        PERFORM fotoflo__require_images(p_project, p_image_ids || CASE WHEN p_before IS NULL THEN '{}'::text[]
                                                                        ELSE ARRAY[p_before] END);
        IF p_op = 'add' THEN
            v_changed := fotoflo__without(p_image_ids, v_ids);
            IF p_index IS NOT NULL THEN
                v_index := least(greatest(p_index, 0), cardinality(v_ids));
            ELSE
                v_index := coalesce(array_position(v_ids, p_before) - 1, cardinality(v_ids));
            END IF;
            IF cardinality(v_changed) > 0 THEN
                v_resolved := jsonb_build_object('image_ids', to_jsonb(v_changed), 'index', v_index);
                v_new := fotoflo__insert_at(v_ids, v_changed, v_index);
            END IF;
        ELSIF p_op = 'remove' THEN
            v_new := fotoflo__without(v_ids, p_image_ids);
            v_changed := fotoflo__without(v_ids, v_new);
            IF cardinality(v_changed) > 0 THEN
                v_resolved := jsonb_build_object('image_ids', to_jsonb(v_changed));
            END IF;
        ELSE
            v_changed := fotoflo__without(p_image_ids, fotoflo__without(p_image_ids, v_ids));  -- one removed meanwhile stays removed
            v_rest := fotoflo__without(v_ids, v_changed);
            v_index := coalesce(array_position(v_rest, p_before) - 1, cardinality(v_rest));
            v_new := fotoflo__insert_at(v_rest, v_changed, v_index);
            IF cardinality(v_changed) > 0 AND v_new <> v_ids THEN
                v_resolved := jsonb_build_object('image_ids', to_jsonb(v_changed), 'index', v_index);
            END IF;
        END IF;
    ELSE
        PERFORM fotoflo__raise('invalid_value', to_jsonb(format('op must be one of delete, undelete, rename, cover, add, remove, move, not %s', p_op)));
    END IF;
    IF v_resolved IS NULL THEN
        RETURN jsonb_build_object('collection', v_cur, 'change', NULL);
    END IF;

    -- apply
    IF p_op = 'delete' THEN
        v_deleted := true;
    ELSIF p_op = 'undelete' THEN
        v_deleted := false;
        v_name := fotoflo__free_name(p_project, v_name, p_collection_id);
    ELSIF p_op = 'rename' THEN
        v_name := v_resolved ->> 'name';
        v_resolved := v_resolved - 'name';
    ELSIF p_op = 'cover' THEN
        v_cover := v_resolved ->> 'cover';
        v_resolved := v_resolved - 'cover';
    ELSIF p_op = 'remove' AND v_cover = ANY (v_changed) THEN
        v_cover := NULL;  -- back to the first image, rather than a cover outside the collection
    END IF;
    IF p_op IN ('add', 'remove', 'move') THEN
        PERFORM fotoflo__write_items(p_collection_id, v_new);
    END IF;
    UPDATE collections SET name = v_name, cover_image_id = v_cover, updated_at = p_now, version = version + 1,
                           deleted_at = CASE WHEN v_deleted THEN p_now END
    WHERE id = p_collection_id;
    v_rec := fotoflo__collection(p_project, p_collection_id);
    IF p_op = 'undelete' THEN
        v_resolved := jsonb_build_object('image_ids', v_rec -> 'image_ids');
    END IF;
    RETURN jsonb_build_object('collection', v_rec, 'change',
        fotoflo__record(p_project, fotoflo__next_seq(p_project),
                        CASE WHEN p_op = 'delete' THEN 'collection.deleted' ELSE 'collection.updated' END, p_now, NULL,
                        jsonb_build_object('op', p_op) || fotoflo__card(v_rec) || v_resolved));
END $$;

-- `Store.delete_image`: {"image", "changes"}: the image as it was, then one `collection.updated`
-- remove per live collection that held it and the `image.deleted` entry. Its files stay in Storage.
CREATE OR REPLACE FUNCTION public.fotoflo_delete_image(
    p_project text, p_image_id text, p_if_sha256 text, p_now text
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_image images;
    v_changes jsonb := '[]';
    v_holder text;
    v_edit jsonb;
BEGIN
    PERFORM fotoflo__lock(p_project);
    SELECT * INTO v_image FROM images WHERE id = p_image_id AND project = p_project;
    IF NOT FOUND THEN
        PERFORM fotoflo__raise('unknown_image', jsonb_build_array(p_image_id));
    END IF;
    IF p_if_sha256 IS NOT NULL AND v_image.sha256 <> p_if_sha256 THEN
        PERFORM fotoflo__raise('version_changed', to_jsonb(format('image %L is at version %s, not %s…',
                                                                  p_image_id, v_image.version, left(p_if_sha256, 12))));
    END IF;
    FOR v_holder IN
        SELECT DISTINCT c.id FROM collections c JOIN collection_items i ON i.collection_id = c.id
        WHERE i.image_id = p_image_id AND c.deleted_at IS NULL ORDER BY c.id
    LOOP
        v_edit := fotoflo_edit_collection(p_project, v_holder, 'remove', ARRAY[p_image_id], NULL, NULL, NULL, NULL, p_now);
        IF v_edit -> 'change' <> 'null'::jsonb THEN
            v_changes := v_changes || jsonb_build_array(v_edit -> 'change');
        END IF;
    END LOOP;
    -- What is left refers to it without a feed entry of its own: tombstones, conflict copies.
    DELETE FROM collection_items WHERE image_id = p_image_id;
    UPDATE collections SET cover_image_id = NULL WHERE cover_image_id = p_image_id;
    UPDATE images SET conflict_of = NULL WHERE conflict_of = p_image_id;
    DELETE FROM image_versions WHERE image_id = p_image_id;
    DELETE FROM images WHERE id = p_image_id;
    RETURN jsonb_build_object('image', to_jsonb(v_image), 'changes', v_changes || jsonb_build_array(
        fotoflo__record(p_project, fotoflo__next_seq(p_project), 'image.deleted', p_now, NULL,
                        jsonb_build_object('image_id', p_image_id, 'filename', v_image.filename))));
END $$;
