"""Uploads: multipart bodies streamed to temp files under one budget per server, each file ingested."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
import time
import unicodedata
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dashboard import untrusted
from dashboard.auth.access import AuthRefused
from dashboard.auth.roles import Action
from dashboard.events import Device
from dashboard.http.base import ApiError
from dashboard.http.images import sha256_arg
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import Allow
from dashboard.imaging.errors import IngestError, TooLarge
from dashboard.store import UnknownImage

if TYPE_CHECKING:
    from tornado.concurrent import Future

    from dashboard.app import App

UPLOAD_BODY_TIMEOUT_S = 3600.0  # an upload's body (up to 4 × --max-bytes over a slow link)
BUSY_RETRY_AFTER_S = 5  # the Retry-After of a `503 busy`
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DEVICE_NAME_CHARS = 100
MAX_FOLDER_CHARS = 1000  # a synced file's folder (the `folder` field of an upload)


class UploadBudget:
    """Upload bytes held by all requests in flight of one server (their temp files), up to `capacity_bytes`.

    A request takes its declared `Content-Length` before its body is read (or, chunked, each
    chunk as it comes) and gives it back when it ends; past the capacity it is `503 busy`.
    """

    def __init__(self, capacity_bytes: int, spool_dir: Path) -> None:
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self.spool_dir = spool_dir
        self._lock = threading.Lock()  # one process may run several servers, each on its own loop
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Temp files of uploads a crash interrupted (another server on this data directory may be
        # writing younger ones: keep those).
        old = time.time() - 2 * UPLOAD_BODY_TIMEOUT_S
        for leftover in spool_dir.glob("upload-*.part"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < old:
                    leftover.unlink()

    def take(self, size_bytes: int) -> bool:
        with self._lock:
            if self.used_bytes + size_bytes > self.capacity_bytes:
                return False
            self.used_bytes += size_bytes
            return True

    def give_back(self, size_bytes: int) -> None:
        with self._lock:
            self.used_bytes = max(0, self.used_bytes - size_bytes)


_budgets: weakref.WeakKeyDictionary[App, UploadBudget] = weakref.WeakKeyDictionary()
_budgets_lock = threading.Lock()


def upload_budget(app: App) -> UploadBudget:
    """The server's upload budget, and its spool directory `DATA/tmp` (made on first use)."""
    with _budgets_lock:
        budget = _budgets.get(app)
        if budget is None:
            settings = app.settings
            budget = _budgets[app] = UploadBudget(settings.upload_budget_bytes, settings.data / "tmp")
        return budget


class UploadHandler(ProjectHandler):
    """Multipart uploads, streamed: each file part goes to a temp file in `DATA/tmp` as it arrives
    (never the whole body in memory), and is ingested from there, then removed."""

    ACTIONS = {"post": Allow(Action.UPLOAD, project=True)}

    def initialize(self, app: App) -> None:
        super().initialize(app)
        self._form: untrusted.FormParser | None = None
        self._form_error: untrusted.BadForm | None = None
        self._budget: UploadBudget | None = None
        self._held_bytes = 0  # of the budget
        self._declared = False  # the budget was taken for the whole declared body at once

    @property
    def max_body_bytes(self) -> int:
        return self.app.settings.max_bytes * 4 + 1024 * 1024

    async def prepare(self) -> None:
        await super().prepare()
        try:
            self.app.access.check_upload_rate(self.principal, self.client)
        except AuthRefused as exc:
            self._early = True
            raise ApiError.refused(exc) from None
        budget = self._budget = upload_budget(self.app)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit():
            if int(declared) > budget.capacity_bytes:
                self._early = True
                raise self.over_budget()
            if not budget.take(int(declared)):
                self._early = True
                raise self.busy()
            self._held_bytes, self._declared = int(declared), True
        try:
            self._form = untrusted.FormParser(
                self.request.headers.get("Content-Type", ""),
                spool_dir=budget.spool_dir,
                max_files=self.app.settings.max_files,
                max_part_bytes=self.app.settings.max_bytes,
            )
        except untrusted.NotMultipart:
            pass  # no form, so no file: answered `400 no_file` once the body is read
        except untrusted.BadForm as exc:
            self._form_error = exc  # answered once the body is read, as any malformed form
        set_timeout = getattr(self.request.connection, "set_body_timeout", None)
        if set_timeout is not None:
            set_timeout(UPLOAD_BODY_TIMEOUT_S)

    def over_budget(self) -> ApiError:
        # Never to fit, however long the client waits: not a 503.
        limit = self._budget.capacity_bytes if self._budget is not None else 0
        return ApiError(413, "body_too_large", f"the upload is over this server's upload buffer of {limit} bytes "
                        "(--upload-buffer-bytes)")  # fmt: skip

    def busy(self) -> ApiError:
        return ApiError(503, "busy", "the server is receiving too many uploads at once; try again shortly",
                        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})  # fmt: skip

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body_bytes += len(chunk)
        if self._body_bytes > self.max_body_bytes:
            self.answer_now(self.too_large())
            return
        if not self._declared and self._budget is not None:
            if self._held_bytes + len(chunk) > self._budget.capacity_bytes:
                self.answer_now(self.over_budget())
                return
            if not self._budget.take(len(chunk)):
                self.answer_now(self.busy())
                return
            self._held_bytes += len(chunk)
        if self._form is None or self._form_error is not None:
            return  # a form already refused: the rest is dropped, the answer comes once it is read
        try:
            self._form.feed(chunk)
        except untrusted.BadForm as exc:
            self._form_error = exc

    def answer_now(self, error: ApiError) -> None:
        """Answer `error` in the middle of the body and drop the connection rather than read the rest."""
        self._early = True
        self.send_error(error.status_code, exc_info=(ApiError, error, None))
        self.release()

    def release(self) -> None:
        """Delete the temp files and give their bytes back to the budget (idempotent)."""
        if self._form is not None:
            self._form.remove()
        if self._budget is not None and self._held_bytes:
            self._budget.give_back(self._held_bytes)
            self._held_bytes = 0

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Future[None]:
        self.release()  # before the answer leaves: a client that sees it finds no temp file left
        return super().finish(chunk)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.release()

    def parse_form(self) -> list[untrusted.FilePart]:
        """The body's files in the field `file`; its other fields join the query's arguments."""
        try:
            if self._form_error is not None:
                raise self._form_error
            form = self._form.close() if self._form is not None else untrusted.Form()
        except untrusted.TooManyFiles as exc:
            raise ApiError(413, "too_many_files", str(exc)) from None
        except untrusted.BadForm as exc:
            raise ApiError(400, "bad_multipart", f"the body is not a valid form: {exc}") from None
        for name, values in form.fields.items():
            self.request.body_arguments.setdefault(name, []).extend(values)
            self.request.arguments.setdefault(name, []).extend(values)
        return [part for part in form.files if part.field == "file"]

    async def post(self, project: str) -> None:
        await self.admit()
        files = self.parse_form()
        if not files:
            raise ApiError(400, "no_file", "send the image(s) as multipart form field 'file'")
        options = self.sync_options(len(files))
        created: list[dict[str, Any]] = []
        existing: list[dict[str, Any]] = []
        errors: list[IngestError] = []
        loop = asyncio.get_running_loop()
        max_bytes = self.app.settings.max_bytes
        for part in files:
            name = untrusted.clean_filename(part.filename)
            if part.too_large:
                errors.append(TooLarge(name, f"{part.size_bytes} bytes is over the limit of {max_bytes} bytes"))
                continue
            ingest = functools.partial(
                self.app.ingestor.ingest, part.path, project, filename=name, quarantine=False, **options
            )
            try:
                result = await loop.run_in_executor(self.app.ingest_pool, ingest)
            except IngestError as exc:
                errors.append(exc)
                continue
            except UnknownImage:
                raise ApiError(
                    404, "unknown_image", f"no image {options['replaces']!r} in project {project!r}"
                ) from None
            finally:
                part.path.unlink(missing_ok=True)  # ingested (its blobs written) or refused: no longer needed
            extra: dict[str, Any] = {"created": result.created, "updated": result.updated}
            if result.conflict_copy is not None:
                extra["conflict_copy"] = self.wire.image(result.conflict_copy)
            (created if result.created or result.updated else existing).append(self.wire.image(result.image, **extra))
        if created:
            status = 201
        elif existing:
            status = 200
        else:
            status = max(e.http_status for e in errors)
        self.write_json({"images": created + existing, "errors": [e.to_dict() for e in errors]}, status)

    def sync_options(self, file_count: int) -> dict[str, Any]:
        """What a sync client adds (query or form fields): checksum, the version replaced, the device, the folder.

        `folder` (the file's directory in the synced folder) is only compared, never opened: a RAW and a
        JPEG of one capture pair only within one folder (dashboard/pairs.py).
        """
        get = self.get_argument
        sha256, replaces, base = get("sha256", None), get("replaces", None), get("base_sha256", None)
        device_id, device_name = get("device_id", None), get("device_name", None)
        if (sha256 or replaces) and file_count != 1:
            raise ApiError(400, "bad_argument", "sha256 and replaces are for an upload of one file")
        if replaces is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", replaces):
            raise ApiError(400, "bad_argument", "replaces must be an image id")
        if (replaces is None) != (base is None):
            raise ApiError(400, "bad_argument", "replaces and base_sha256 go together")
        folder = get("folder", None) or ""
        if len(folder) > MAX_FOLDER_CHARS or any(unicodedata.category(c) == "Cc" for c in folder):
            raise ApiError(400, "bad_argument", f"folder must be at most {MAX_FOLDER_CHARS} printable characters")
        device = None
        if device_id is not None:
            if not _DEVICE_ID.fullmatch(device_id):
                raise ApiError(400, "bad_argument", "device_id must be 1 to 64 letters, digits, '-' or '_'")
            name = (device_name or device_id).strip()
            if not name or len(name) > MAX_DEVICE_NAME_CHARS or any(unicodedata.category(c) == "Cc" for c in name):
                raise ApiError(
                    400, "bad_argument", f"device_name must be 1 to {MAX_DEVICE_NAME_CHARS} printable characters"
                )
            device = Device(device_id, name.replace("/", "-"))
        elif device_name is not None:
            raise ApiError(400, "bad_argument", "device_name needs a device_id")
        return {
            "expected_sha256": sha256_arg("sha256", sha256) if sha256 else None,
            "replaces": replaces,
            "base_sha256": sha256_arg("base_sha256", base) if base is not None else None,
            "device": device,
            "folder": unicodedata.normalize("NFC", folder.replace("\\", "/")),
        }
