"""Tests of dashboard/supabase/."""
