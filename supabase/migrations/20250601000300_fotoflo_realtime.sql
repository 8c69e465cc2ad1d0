-- Fotoflo on Supabase, 4/5: Realtime announces every new feed entry. Idempotent.
--
-- Servers subscribe to `postgres_changes` INSERTs on `public.changes` (SupabaseBus). A Realtime
-- message only says "project P has news up to seq S": servers read the feed itself from their
-- own cursors, so a message Realtime drops costs time, never a change.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        CREATE PUBLICATION supabase_realtime;  -- every Supabase project has it; a bare PostgreSQL may not
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_publication_tables
                   WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = 'changes') THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE public.changes;
    END IF;
END $$;
