-- Fotoflo on Supabase, 3/5: who may do what. Idempotent.
--
-- The service role (Fotoflo's servers, `--supabase-key`) writes, only through the functions of
-- the previous migration; it bypasses row level security, as it does on every Supabase project.
-- The anon key reads only what a share grants: requests that send a live share's token in the
-- `x-fotoflo-share` header read that project's images, versions, feed and collections. Nobody
-- else reads anything, and anon and authenticated users write nothing.

-- Whether the current request carries a live share of the project. SECURITY DEFINER: the caller
-- need not (and must not) be able to read `shares`.
CREATE OR REPLACE FUNCTION public.fotoflo_shared(p_project text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.shares s
        WHERE s.project = p_project
          AND s.token = nullif(current_setting('request.headers', true), '')::json ->> 'x-fotoflo-share'
          AND (s.expires_at IS NULL OR s.expires_at > now()))
$$;

-- Whether a Storage object (`kind/ab/sha256`) holds a file of an image of a shared project.
CREATE OR REPLACE FUNCTION public.fotoflo_shared_blob(p_name text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.image_versions v
        WHERE v.sha256 = split_part(p_name, '/', 3) AND public.fotoflo_shared(v.project))
$$;

ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.images ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.image_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.collections ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.collection_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.shares ENABLE ROW LEVEL SECURITY;  -- and no policy: only the service role sees it

DROP POLICY IF EXISTS "fotoflo: shared projects are readable" ON public.projects;
CREATE POLICY "fotoflo: shared projects are readable" ON public.projects
    FOR SELECT TO anon, authenticated USING (public.fotoflo_shared(name));

DROP POLICY IF EXISTS "fotoflo: images of shared projects are readable" ON public.images;
CREATE POLICY "fotoflo: images of shared projects are readable" ON public.images
    FOR SELECT TO anon, authenticated USING (public.fotoflo_shared(project));

DROP POLICY IF EXISTS "fotoflo: versions of shared projects are readable" ON public.image_versions;
CREATE POLICY "fotoflo: versions of shared projects are readable" ON public.image_versions
    FOR SELECT TO anon, authenticated USING (public.fotoflo_shared(project));

DROP POLICY IF EXISTS "fotoflo: the feed of shared projects is readable" ON public.changes;
CREATE POLICY "fotoflo: the feed of shared projects is readable" ON public.changes
    FOR SELECT TO anon, authenticated USING (public.fotoflo_shared(project));

DROP POLICY IF EXISTS "fotoflo: collections of shared projects are readable" ON public.collections;
CREATE POLICY "fotoflo: collections of shared projects are readable" ON public.collections
    FOR SELECT TO anon, authenticated USING (public.fotoflo_shared(project));

DROP POLICY IF EXISTS "fotoflo: items of shared collections are readable" ON public.collection_items;
CREATE POLICY "fotoflo: items of shared collections are readable" ON public.collection_items
    FOR SELECT TO anon, authenticated
    USING (EXISTS (SELECT 1 FROM public.collections c
                   WHERE c.id = collection_id AND public.fotoflo_shared(c.project)));

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT SELECT ON public.projects, public.images, public.image_versions, public.changes, public.collections,
    public.collection_items, public.fotoflo_feed, public.fotoflo_collections TO anon, authenticated;
-- Supabase grants every role everything on new tables by default; row level security would stop
-- the writes, and taking the privileges back stops them twice.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON public.projects, public.images,
    public.image_versions, public.changes, public.collections, public.collection_items FROM anon, authenticated;
REVOKE ALL ON public.shares FROM anon, authenticated;
GRANT ALL ON public.projects, public.images, public.image_versions, public.changes, public.collections,
    public.collection_items, public.shares, public.fotoflo_feed, public.fotoflo_collections TO service_role;

-- Every fotoflo_* function is the service role's, except the two the policies call.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname LIKE 'fotoflo\_%'
          AND p.proname NOT IN ('fotoflo_shared', 'fotoflo_shared_blob')
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, anon, authenticated', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', f);
    END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION public.fotoflo_shared(text), public.fotoflo_shared_blob(text)
    TO anon, authenticated, service_role;
