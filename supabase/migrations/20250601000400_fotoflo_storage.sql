-- Fotoflo on Supabase, 5/5: the Storage bucket for image files, and who may read it. Idempotent.
--
-- One private bucket, `fotoflo`, content-addressed like the data directory's blobs:
-- `original/ab/<sha256>`, `preview/ab/<sha256>`, `thumb/ab/<sha256>`. The service role writes
-- (it bypasses these policies); the anon key reads the files of images of shared projects
-- (`x-fotoflo-share`, see the security migration); signed URLs work for whoever holds them, until
-- they expire. The bucket's size limit is left to the project's upload limit (Storage settings).

INSERT INTO storage.buckets (id, name, public)
VALUES ('fotoflo', 'fotoflo', false)
ON CONFLICT (id) DO NOTHING;

DROP POLICY IF EXISTS "fotoflo: files of shared images are readable" ON storage.objects;
CREATE POLICY "fotoflo: files of shared images are readable" ON storage.objects
    FOR SELECT TO anon, authenticated
    USING (bucket_id = 'fotoflo' AND public.fotoflo_shared_blob(name));

-- PostgREST serves the new tables, views and functions once it reloads its schema cache (Supabase
-- reloads it after DDL by itself; this asks anyway).
NOTIFY pgrst, 'reload schema';
