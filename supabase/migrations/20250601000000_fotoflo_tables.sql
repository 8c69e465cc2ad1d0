-- Fotoflo on Supabase, 1/5: the tables, the same shape as PostgresStore's schema version 3
-- (dashboard/store/pg_migrations.py), plus `shares`. Idempotent: safe to run again.
--
-- Times are ISO 8601 text, as SQLite and PostgresStore keep them, so every store returns equal
-- records; `exif` and the feed's `data` are jsonb, readable as JSON through PostgREST.

CREATE TABLE IF NOT EXISTS public.projects (
    name       text PRIMARY KEY,
    created_at text NOT NULL,
    last_seq   bigint NOT NULL DEFAULT 0  -- the feed's counter: bumped in the transaction of each change
);

CREATE TABLE IF NOT EXISTS public.images (
    id           text PRIMARY KEY,
    project      text NOT NULL REFERENCES public.projects (name),
    filename     text NOT NULL,
    sha256       text NOT NULL,
    size_bytes   bigint NOT NULL,
    width        integer NOT NULL,
    height       integer NOT NULL,
    format       text NOT NULL,
    mime         text NOT NULL,
    captured_at  text NOT NULL,
    camera_make  text,
    camera_model text,
    exif         jsonb NOT NULL DEFAULT '{}',
    created_at   text NOT NULL,
    seq          bigint NOT NULL,
    rating       smallint NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    flag         text NOT NULL DEFAULT 'none' CHECK (flag IN ('none', 'pick', 'reject')),
    label        text NOT NULL DEFAULT 'none' CHECK (label IN ('none', 'red', 'yellow', 'green', 'blue', 'purple')),
    version      integer NOT NULL DEFAULT 1,
    conflict_of  text REFERENCES public.images (id),
    UNIQUE (project, sha256)
);
CREATE INDEX IF NOT EXISTS images_by_project_seq ON public.images (project, seq DESC);

CREATE TABLE IF NOT EXISTS public.image_versions (
    image_id    text NOT NULL REFERENCES public.images (id),
    version     integer NOT NULL,
    project     text NOT NULL,
    sha256      text NOT NULL,
    filename    text NOT NULL,
    size_bytes  bigint NOT NULL,
    width       integer NOT NULL,
    height      integer NOT NULL,
    format      text NOT NULL,
    mime        text NOT NULL,
    created_at  text NOT NULL,
    seq         bigint NOT NULL,
    device_id   text,
    device_name text,
    PRIMARY KEY (image_id, version)
);
CREATE INDEX IF NOT EXISTS image_versions_by_sha ON public.image_versions (project, sha256);

-- The change feed: the truth every server and gallery catches up from. Realtime announces its
-- INSERTs (see the realtime migration); a listener that missed one reads from its cursor.
CREATE TABLE IF NOT EXISTS public.changes (
    project    text NOT NULL,
    seq        bigint NOT NULL,
    kind       text NOT NULL,
    created_at text NOT NULL,
    image_id   text,
    data       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (project, seq)
);

CREATE TABLE IF NOT EXISTS public.collections (
    id             text PRIMARY KEY,
    project        text NOT NULL REFERENCES public.projects (name),
    name           text NOT NULL,
    cover_image_id text REFERENCES public.images (id),
    created_at     text NOT NULL,
    updated_at     text NOT NULL,
    version        integer NOT NULL DEFAULT 1,
    seq            bigint NOT NULL,
    deleted_at     text
);
CREATE UNIQUE INDEX IF NOT EXISTS collections_live_name ON public.collections (project, name) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS collections_by_project_seq ON public.collections (project, seq DESC);

CREATE TABLE IF NOT EXISTS public.collection_items (
    collection_id text NOT NULL REFERENCES public.collections (id),
    image_id      text NOT NULL REFERENCES public.images (id),
    position      integer NOT NULL,
    PRIMARY KEY (collection_id, image_id)
);
CREATE INDEX IF NOT EXISTS collection_items_in_order ON public.collection_items (collection_id, position);

-- A share lets the anon key read one project (images, feed, collections, files), for requests
-- that send its token in the `x-fotoflo-share` header. Nobody but the service role sees this table.
CREATE TABLE IF NOT EXISTS public.shares (
    token      text PRIMARY KEY CHECK (length(token) >= 16),
    project    text NOT NULL REFERENCES public.projects (name),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX IF NOT EXISTS shares_by_project ON public.shares (project);

-- Read models for PostgREST: one statement each, so a page is of one committed state. They run
-- with the caller's rights (security_invoker), so the tables' row level security applies.
CREATE OR REPLACE VIEW public.fotoflo_feed WITH (security_invoker = true) AS
SELECT c.project, c.seq, c.kind, c.created_at, c.data,
       CASE WHEN i.id IS NULL THEN NULL ELSE to_jsonb(i) END AS image
FROM public.changes c
LEFT JOIN public.images i ON i.id = c.image_id;

CREATE OR REPLACE VIEW public.fotoflo_collections WITH (security_invoker = true) AS
SELECT c.id, c.project, c.name, c.cover_image_id, c.created_at, c.updated_at, c.version, c.seq, c.deleted_at,
       coalesce((SELECT array_agg(ci.image_id ORDER BY ci.position)
                 FROM public.collection_items ci WHERE ci.collection_id = c.id), '{}') AS image_ids
FROM public.collections c;
