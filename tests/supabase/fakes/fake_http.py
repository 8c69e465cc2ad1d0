"""`FakeSupabaseHTTP`: a FAKE of Supabase's HTTP API, as an `httpx` transport for supabase-py.

No Supabase can run here, so this stands in for the two services Fotoflo calls over HTTP:

- **PostgREST** (`/rest/v1`): table reads with the filters, ordering, limits and exact counts
  supabase-py sends, inserts, updates and deletes, and `rpc` calls, each run as one transaction on
  a REAL PostgreSQL (the test cluster of `tests/support/services.py`) as the role the key's JWT names, with
  `request.jwt.claims` and `request.headers` set as PostgREST sets them, so grants and row level
  security decide what a key may do, as on Supabase. Errors come back in PostgREST's JSON shape.
- **Storage** (`/storage/v1`): uploads, object info, downloads and signed URLs in a temp directory.
  Every object also gets its row in `storage.objects`, written and read as the request's role, so
  the bucket's storage policies decide too; signed URLs are JWTs with an expiry, as Storage's are.

Only what Fotoflo and its tests use is implemented. `outage` makes every request fail with 503
(Supabase unreachable behind its gateway).
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import mimetypes
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import jwt
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from tests.supabase.fakes.common import JWT_SECRET

ROLES = ("anon", "authenticated", "service_role")
_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE", "ilike": "ILIKE"}
_RESERVED = {"select", "order", "limit", "offset", "on_conflict", "columns"}

Conn = psycopg.Connection[dict[str, Any]]


class FakeError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


class FakeSupabaseHTTP(httpx.BaseTransport):
    """A FAKE Supabase HTTP API (PostgREST on a real PostgreSQL, Storage in `storage_dir`); see the module."""

    def __init__(self, db_url: str, storage_dir: Path, *, pool_size: int = 8) -> None:
        self.db_url = db_url
        self.storage_dir = Path(storage_dir)
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.outage = False
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for assertions
        self._lock = threading.Lock()
        self._columns: dict[str, dict[str, str]] = {}
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            db_url, min_size=1, max_size=pool_size, kwargs={"row_factory": dict_row}, name="fake-supabase", open=False
        )
        self._pool.open(wait=True, timeout=10)

    def close(self) -> None:
        """Called by each `httpx.Client` that closes; the fake outlives its clients (see `shutdown`)."""

    def shutdown(self) -> None:
        self._pool.close()

    # -- dispatch ---------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self._lock:
            self.requests.append((request.method, path))
        if self.outage:
            return httpx.Response(503, text="upstream connect error (a fake outage)")
        try:
            if path.startswith("/rest/v1/"):
                return self._rest(request, path.removeprefix("/rest/v1/"))
            if path.startswith("/storage/v1/"):
                return self._storage(request, path.removeprefix("/storage/v1/"))
            raise FakeError(404, {"message": f"no route {path}"})
        except FakeError as exc:
            return httpx.Response(exc.status, json=exc.body)

    def _claims(self, request: httpx.Request, *, storage: bool = False) -> dict[str, Any]:
        """The JWT claims of the request (its Bearer token, else its apikey), as the gateway checks them."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or request.headers.get(
            "apikey", ""
        )
        try:
            claims: dict[str, Any] = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            if storage:
                raise FakeError(400, {"statusCode": "403", "error": "Unauthorized", "message": str(exc)}) from exc
            raise FakeError(401, {"code": "PGRST301", "message": str(exc), "details": None, "hint": None}) from exc
        if claims.get("role") not in ROLES:
            raise FakeError(401, {"code": "PGRST301", "message": "unknown role", "details": None, "hint": None})
        return claims

    @contextlib.contextmanager
    def _as(self, request: httpx.Request, claims: dict[str, Any], *, storage: bool = False) -> Iterator[Conn]:
        """One transaction as the request's role, with PostgREST's request settings; errors as PostgREST's."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(claims["role"])))
                conn.execute(
                    "SELECT set_config('request.jwt.claims', %s, true), set_config('request.headers', %s, true)",
                    (json.dumps(claims), json.dumps(headers)),
                )
                yield conn
        except psycopg.Error as exc:
            raise self._pg_error(exc, claims, storage=storage) from exc

    @staticmethod
    def _pg_error(exc: psycopg.Error, claims: dict[str, Any], *, storage: bool) -> FakeError:
        state = exc.sqlstate or ""
        diag = exc.diag
        if storage:
            if state == "42501":
                return FakeError(403, {"statusCode": "403", "error": "Unauthorized", "message": diag.message_primary})
            return FakeError(500, {"statusCode": "500", "error": "internal", "message": str(exc)})
        if state == "42501":
            status = 401 if claims.get("role") == "anon" else 403
        elif state in ("23505", "23503"):
            status = 409
        elif state == "P0001" or state.startswith(("22", "23")):
            status = 400
        elif state in ("42883", "42P01"):
            status = 404
        else:
            status = 500
        body = {
            "code": state,
            "message": diag.message_primary,
            "details": diag.message_detail,
            "hint": diag.message_hint,
        }
        return FakeError(status, body)

    # -- PostgREST --------------------------------------------------------------------------

    def _rest(self, request: httpx.Request, rest: str) -> httpx.Response:
        claims = self._claims(request)
        if rest.startswith("rpc/"):
            if request.method != "POST":
                raise FakeError(405, {"code": "PGRST117", "message": "only POST for functions here"})
            return self._rpc(request, claims, unquote(rest.removeprefix("rpc/")))
        table = unquote(rest)
        columns = self._table_columns(table)
        params = list(request.url.params.multi_items())
        where, values = self._where(params, columns)
        if request.method in ("GET", "HEAD"):
            return self._select(request, claims, table, columns, params, where, values)
        if request.method == "POST":
            rows = json.loads(request.content)
            rows = rows if isinstance(rows, list) else [rows]
            names = list(dict.fromkeys(k for row in rows for k in row))
            query = sql.SQL(
                "INSERT INTO {t} ({cols}) SELECT {cols} FROM json_populate_recordset(NULL::{t}, %s)"
            ).format(t=sql.Identifier("public", table), cols=sql.SQL(", ").join(map(sql.Identifier, names)))
            with self._as(request, claims) as conn:
                conn.execute(query, (json.dumps(rows),))
            return httpx.Response(201)
        if request.method == "PATCH":
            body = json.loads(request.content)
            sets = sql.SQL(", ").join(
                sql.SQL("{} = %s::{}").format(sql.Identifier(k), sql.SQL(columns[k])) for k in body
            )
            query = sql.SQL("UPDATE {t} SET {sets}{where}").format(
                t=sql.Identifier("public", table), sets=sets, where=where
            )
            with self._as(request, claims) as conn:
                conn.execute(query, [*(_param(v) for v in body.values()), *values])
            return httpx.Response(204)
        if request.method == "DELETE":
            query = sql.SQL("DELETE FROM {t}{where}").format(t=sql.Identifier("public", table), where=where)
            with self._as(request, claims) as conn:
                conn.execute(query, values)
            return httpx.Response(204)
        raise FakeError(405, {"code": "PGRST117", "message": f"method {request.method}"})

    def _table_columns(self, table: str) -> dict[str, str]:
        """name → SQL type of a table or view of `public` (whatever the role may read: PostgREST's schema cache)."""
        if table not in self._columns:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a"
                    " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
                    " ORDER BY a.attnum",
                    (table,),
                ).fetchall()
            if not rows:
                raise FakeError(
                    404,
                    {"code": "PGRST205", "message": f"Could not find the table 'public.{table}' in the schema cache"},
                )
            self._columns[table] = {r["attname"]: r["type"] for r in rows}
        return self._columns[table]

    def _where(self, params: list[tuple[str, str]], columns: dict[str, str]) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = []
        values: list[Any] = []
        for name, raw in params:
            if name in _RESERVED:
                continue
            if name not in columns:
                raise FakeError(400, {"code": "42703", "message": f"column {name} does not exist"})
            negate = raw.startswith("not.")
            op, _, operand = raw.removeprefix("not.").partition(".")
            column, kind = sql.Identifier(name), sql.SQL(columns[name])
            if op in _OPS:
                clause: sql.Composable = sql.SQL("{} {} %s::{}").format(column, sql.SQL(_OPS[op]), kind)
                values.append(operand)
            elif op == "in":
                clause = sql.SQL("{} = ANY(%s::{}[])").format(column, kind)
                values.append(_in_list(operand))
            elif op == "is" and operand in ("null", "true", "false"):
                clause = sql.SQL("{} IS {}").format(column, sql.SQL(operand.upper()))
            else:
                raise FakeError(400, {"code": "PGRST100", "message": f"unsupported filter {name}={raw}"})
            clauses.append(sql.SQL("NOT ({})").format(clause) if negate else clause)
        if not clauses:
            return sql.SQL(""), values
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), values

    def _select(
        self,
        request: httpx.Request,
        claims: dict[str, Any],
        table: str,
        columns: dict[str, str],
        params: list[tuple[str, str]],
        where: sql.Composable,
        values: list[Any],
    ) -> httpx.Response:
        query = dict(params)
        wanted = [c.strip() for c in query.get("select", "*").split(",") if c.strip()]
        if wanted == ["*"]:
            wanted = list(columns)
        unknown = [c for c in wanted if c not in columns]
        if unknown:
            raise FakeError(400, {"code": "42703", "message": f"column {unknown[0]} does not exist"})
        order: list[sql.Composable] = []
        for term in filter(None, query.get("order", "").split(",")):
            name, _, direction = term.partition(".")
            if name not in columns:
                raise FakeError(400, {"code": "42703", "message": f"column {name} does not exist"})
            flags = direction.split(".")
            order.append(
                sql.SQL("{} {}{}").format(
                    sql.Identifier(name),
                    sql.SQL("DESC" if "desc" in flags else "ASC"),
                    sql.SQL(" NULLS FIRST" if "nullsfirst" in flags else " NULLS LAST" if "nullslast" in flags else ""),
                )
            )
        inner = sql.SQL("SELECT {cols} FROM {t}{where}{order}{limit}{offset}").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, wanted)),
            t=sql.Identifier("public", table),
            where=where,
            order=sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order) if order else sql.SQL(""),
            limit=sql.SQL(" LIMIT {}").format(int(query["limit"])) if "limit" in query else sql.SQL(""),
            offset=sql.SQL(" OFFSET {}").format(int(query["offset"])) if "offset" in query else sql.SQL(""),
        )
        headers = {"Content-Type": "application/json; charset=utf-8"}
        with self._as(request, claims) as conn:
            row = conn.execute(sql.SQL("SELECT coalesce(json_agg(t), '[]') AS rows FROM ({}) t").format(inner), values)
            rows = row.fetchone()["rows"]  # type: ignore[index]
            if "count=exact" in request.headers.get("prefer", ""):
                counted = conn.execute(
                    sql.SQL("SELECT count(*) AS n FROM {t}{where}").format(
                        t=sql.Identifier("public", table), where=where
                    ),
                    values,
                ).fetchone()
                total = int(counted["n"])  # type: ignore[index]
                headers["Content-Range"] = f"0-{len(rows) - 1}/{total}" if rows else f"*/{total}"
        if request.method == "HEAD":
            return httpx.Response(200, headers=headers)
        return httpx.Response(200, headers=headers, content=json.dumps(rows).encode())

    def _rpc(self, request: httpx.Request, claims: dict[str, Any], name: str) -> httpx.Response:
        args = json.loads(request.content or b"{}")
        with self._pool.connection() as conn:
            found = conn.execute(
                "SELECT p.proargnames AS names, p.proargtypes::regtype[]::text[] AS types,"
                " p.prorettype::regtype::text AS returns FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = 'public' AND p.proname = %s",
                (name,),
            ).fetchone()
        if found is None or not set(args) <= set(found["names"] or []):
            raise FakeError(
                404,
                {"code": "PGRST202", "message": f"Could not find the function public.{name}({', '.join(args)})",
                 "details": None, "hint": None},
            )  # fmt: skip
        types = dict(zip(found["names"] or [], found["types"] or [], strict=False))
        call = sql.SQL("SELECT {f}({args}) AS result").format(
            f=sql.Identifier("public", name),
            args=sql.SQL(", ").join(sql.SQL("{} := %s::{}").format(sql.Identifier(k), sql.SQL(types[k])) for k in args),
        )
        values = [Jsonb(v) if types[k] in ("jsonb", "json") else _param(v) for k, v in args.items()]
        with self._as(request, claims) as conn:
            result = conn.execute(call, values).fetchone()["result"]  # type: ignore[index]
        if found["returns"] == "void":
            return httpx.Response(204)
        return httpx.Response(200, headers={"Content-Type": "application/json"}, content=json.dumps(result).encode())

    # -- Storage ----------------------------------------------------------------------------

    def _storage(self, request: httpx.Request, rest: str) -> httpx.Response:
        parts = [unquote(p) for p in rest.split("/")]
        if parts[:2] == ["object", "sign"] and request.method == "GET":
            return self._signed_download(request, parts[2], "/".join(parts[3:]))
        claims = self._claims(request, storage=True)
        if parts[:2] == ["object", "sign"] and request.method == "POST":
            bucket, name = parts[2], "/".join(parts[3:])
            self._object_row(request, claims, bucket, name)  # may this role read it?
            expires_in = int(json.loads(request.content)["expiresIn"])
            token = jwt.encode(
                {"url": f"{bucket}/{name}", "iat": int(time.time()), "exp": int(time.time()) + expires_in},
                JWT_SECRET,
                algorithm="HS256",
            )
            return httpx.Response(200, json={"signedURL": f"/object/sign/{bucket}/{name}?token={token}"})
        if parts[:2] == ["object", "info"] and request.method == "GET":
            row = self._object_row(request, claims, parts[2], "/".join(parts[3:]))
            meta = row["metadata"] or {}
            return httpx.Response(
                200,
                json={"id": str(row["id"]), "name": row["name"], "bucket_id": row["bucket_id"],
                      "size": meta.get("size"), "content_type": meta.get("mimetype")},
            )  # fmt: skip
        if parts[0] == "object" and len(parts) >= 3:
            bucket, name = parts[1], "/".join(parts[2:])
            if request.method == "POST":
                return self._upload(request, claims, bucket, name)
            if request.method == "GET":
                row = self._object_row(request, claims, bucket, name)
                return self._file_response(bucket, name, row)
        raise FakeError(404, {"statusCode": "404", "error": "not_found", "message": f"no route {rest}"})

    def _file(self, bucket: str, name: str) -> Path:
        if any(p in ("", ".", "..") for p in name.split("/")):
            raise FakeError(400, {"statusCode": "400", "error": "InvalidKey", "message": f"Invalid key: {name}"})
        return self.storage_dir / bucket / name

    def _object_row(self, request: httpx.Request, claims: dict[str, Any], bucket: str, name: str) -> dict[str, Any]:
        with self._as(request, claims, storage=True) as conn:
            row = conn.execute(
                "SELECT id, bucket_id, name, metadata FROM storage.objects WHERE bucket_id = %s AND name = %s",
                (bucket, name),
            ).fetchone()
        if row is None:  # missing, or hidden from this role by the storage policies
            raise FakeError(404, {"statusCode": "404", "error": "not_found", "message": "Object not found"})
        return row

    def _upload(self, request: httpx.Request, claims: dict[str, Any], bucket: str, name: str) -> httpx.Response:
        target = self._file(bucket, name)
        data, mimetype = _multipart_file(request)
        upsert = request.headers.get("x-upsert", "false") == "true"
        metadata = Jsonb({"size": len(data), "mimetype": mimetype})
        with self._pool.connection() as conn:  # Storage finds the bucket with its own rights
            if conn.execute("SELECT 1 FROM storage.buckets WHERE id = %s", (bucket,)).fetchone() is None:
                raise FakeError(404, {"statusCode": "404", "error": "Bucket not found", "message": "Bucket not found"})
        with self._as(request, claims, storage=True) as conn:
            conflict = "DO UPDATE SET metadata = excluded.metadata, updated_at = now()" if upsert else "DO NOTHING"
            row = conn.execute(
                "INSERT INTO storage.objects (bucket_id, name, metadata) VALUES (%s, %s, %s)"  # type: ignore[arg-type]
                f" ON CONFLICT (bucket_id, name) {conflict} RETURNING id",
                (bucket, name, metadata),
            ).fetchone()
            if row is None:
                raise FakeError(
                    409, {"statusCode": "409", "error": "Duplicate", "message": "The resource already exists"}
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f"{target.name}.{uuid.uuid4().hex}")
            temp.write_bytes(data)
            temp.replace(target)
        return httpx.Response(200, json={"Key": f"{bucket}/{name}", "Id": str(row["id"])})

    def _signed_download(self, request: httpx.Request, bucket: str, name: str) -> httpx.Response:
        try:
            claims = jwt.decode(request.url.params.get("token", ""), JWT_SECRET, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise FakeError(400, {"statusCode": "400", "error": "InvalidJWT", "message": str(exc)}) from exc
        if claims.get("url") != f"{bucket}/{name}":
            raise FakeError(400, {"statusCode": "400", "error": "InvalidSignature", "message": "url mismatch"})
        with self._pool.connection() as conn:  # a signed URL is its own authorization: Storage's rights
            row = conn.execute(
                "SELECT metadata FROM storage.objects WHERE bucket_id = %s AND name = %s", (bucket, name)
            ).fetchone()
        return self._file_response(bucket, name, row)

    def _file_response(self, bucket: str, name: str, row: dict[str, Any] | None) -> httpx.Response:
        path = self._file(bucket, name)
        if not path.is_file():
            raise FakeError(404, {"statusCode": "404", "error": "not_found", "message": "Object not found"})
        mimetype = ((row or {}).get("metadata") or {}).get("mimetype") or mimetypes.guess_type(name)[0]
        return httpx.Response(
            200, headers={"Content-Type": mimetype or "application/octet-stream"}, content=path.read_bytes()
        )


def _param(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def _in_list(operand: str) -> list[str]:
    """`(a,"b,c",d)` → ["a", "b,c", "d"]: PostgREST's list syntax, with double quotes and backslash escapes."""
    body = operand.strip()
    if not (body.startswith("(") and body.endswith(")")):
        raise FakeError(400, {"code": "PGRST100", "message": f"bad list {operand}"})
    items = re.findall(r'"((?:[^"\\]|\\.)*)"|([^,]+)', body[1:-1])
    return [re.sub(r"\\(.)", r"\1", quoted) if quoted or not bare else bare for quoted, bare in items]


def _multipart_file(request: httpx.Request) -> tuple[bytes, str]:
    """The bytes and content type of the form's `file` field."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.read())
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload, part.get_content_type()
    raise FakeError(400, {"statusCode": "400", "error": "InvalidRequest", "message": "no file field"})
