"""FAKES of Supabase's services for tests (no Supabase can run here): its HTTP API and its Realtime websocket.

- `FakeSupabaseHTTP` (`fake_http.py`): PostgREST on the real test PostgreSQL, Storage in a directory,
  as an `httpx` transport that supabase-py's clients take.
- `FakeRealtime` (`fake_realtime.py`): a websocket server speaking the Phoenix channel protocol of
  Supabase Realtime, fed by NOTIFY triggers on the tables of the `supabase_realtime` publication,
  with Realtime's known failure modes on demand.
- `common.py`: the fake project's keys, and test databases with the shim and Fotoflo's migrations.
"""
