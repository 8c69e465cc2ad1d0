"""`fotoflo` command line: `serve` the live gallery, `ingest` files in bulk, `sync` a folder to a server."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from pathlib import Path

from dashboard import logs, preflight
from dashboard.config import ENV, SYNC_ENV, ConfigError, Settings, comma_list
from dashboard.imaging.formats import IMAGE_SUFFIXES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fotoflo", description="Fotoflo: a live photo gallery for studios.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    def env(name: str) -> str:
        return f"(env {ENV[name][0]})"

    serve = sub.add_parser("serve", help="serve the live gallery and the API, watching a hot folder")
    serve.add_argument("--data", type=Path, help=f"data directory (default ~/.local/share/fotoflo) {env('data')}")
    serve.add_argument("--watch", type=Path, help=f"hot folder to watch (default DATA/hotfolder) {env('watch')}")
    serve.add_argument("--no-watch", action="store_true", help="do not watch a hot folder")
    serve.add_argument("--project", help=f"project the hot folder feeds (default 'default') {env('project')}")
    serve.add_argument("--port", type=int, help=f"port (default 5006) {env('port')}")
    serve.add_argument("--address", help=f"address to bind (default 127.0.0.1) {env('address')}")
    serve.add_argument("--secret", help=f"secret for signed URLs (default: generated into DATA) {env('secret')}")
    serve.add_argument(
        "--max-bytes", type=int, help=f"largest accepted file in bytes (default 200 MB) {env('max_bytes')}"
    )
    serve.add_argument("--max-pixels", type=int, help=f"largest accepted image in pixels {env('max_pixels')}")
    serve.add_argument(
        "--decode-timeout-s",
        type=float,
        help=f"seconds one file may take to decode, else it is refused (default 60) {env('decode_timeout_s')}",
    )
    serve.add_argument(
        "--rescan-s", type=float, help=f"seconds between hot-folder rescans (default 60) {env('rescan_s')}"
    )
    serve.add_argument(
        "--heartbeat-s", type=float, help=f"seconds between SSE heartbeats (default 15) {env('heartbeat_s')}"
    )
    serve.add_argument("--wall", action="store_true", default=None, help=f"open / as the wall display {env('wall')}")
    serve.add_argument("--db", help=f"database: postgresql://USER@HOST:PORT/DB (default: SQLite in DATA) {env('db')}")
    serve.add_argument(
        "--bus", help=f"bus between servers: local (default), redis://HOST:PORT/DB or postgres {env('bus')}"
    )
    serve.add_argument(
        "--blobs", metavar="URL",
        help=f"where image files go: file:///PATH (default DATA/blobs) or s3://BUCKET/PREFIX {env('blobs')}",
    )  # fmt: skip
    serve.add_argument(
        "--supabase-url",
        help=f"a Supabase project (https://REF.supabase.co) for store, files and bus {env('supabase_url')}",
    )
    serve.add_argument("--supabase-key", help=f"the Supabase project's service role key {env('supabase_key')}")

    serve.add_argument(
        "--auth", action="store_true", default=None,
        help=f"require sign-in (always on off loopback; makes an owner token if none) {env('auth')}",
    )  # fmt: skip
    serve.add_argument("--max-files", type=int, help=f"files in one upload request (default 100) {env('max_files')}")
    serve.add_argument(
        "--upload-rate", type=int, help=f"uploads per minute per client with --auth (default 600) {env('upload_rate')}"
    )
    serve.add_argument(
        "--login-failures", type=int,
        help=f"failed sign-ins per minute per address before a wait (default 10) {env('login_failures')}",
    )  # fmt: skip
    serve.add_argument(
        "--trusted-proxy", action="append", metavar="ADDR",
        help="a reverse proxy (address or CIDR, repeatable) whose X-Forwarded-For/-Proto are believed "
        f"{env('trusted_proxy')}, comma separated",
    )  # fmt: skip
    serve.add_argument(
        "--upload-buffer-bytes", type=int,
        help=f"upload bytes held at once by all requests (default 8 x max-bytes) {env('upload_buffer_bytes')}",
    )  # fmt: skip

    serve.add_argument(
        "--allowed-host", action="append", dest="allowed_hosts", metavar="NAME",
        help=f"a name the server answers to besides its address and loopback, e.g. studio.local (repeatable) "
        f"{env('allowed_hosts')}, comma-separated",
    )  # fmt: skip
    serve.add_argument(
        "--notify-interval-s", type=float, dest="notify_interval_s", metavar="SECONDS",
        help=f"seconds between two digests of a project (default 60) {env('notify_interval_s')}",
    )  # fmt: skip
    serve.add_argument(
        "--smtp", metavar="URL",
        help=f"e-mail digests through smtp://USER:PASS@HOST:PORT or smtps://… (prefer the env) {env('smtp')}",
    )  # fmt: skip
    serve.add_argument("--smtp-from", metavar="ADDRESS", help=f"the digests' From address {env('smtp_from')}")
    serve.add_argument(
        "--cors-origin", action="append", dest="cors_origins", metavar="ORIGIN",
        help=f"an origin whose pages may use the API, e.g. https://site.example (repeatable) "
        f"{env('cors_origins')}, comma-separated",
    )  # fmt: skip

    ingest = sub.add_parser("ingest", help="import image files or folders into a project")
    ingest.add_argument("paths", nargs="+", type=Path, help="files or folders (searched recursively)")
    ingest.add_argument("--data", type=Path, help=f"data directory {env('data')}")
    ingest.add_argument("--project", help=f"target project (default 'default') {env('project')}")
    ingest.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    ingest.add_argument(
        "--decode-timeout-s", type=float, help=f"seconds one file may take to decode {env('decode_timeout_s')}"
    )
    ingest.add_argument("--db", help=f"database (default: SQLite in DATA) {env('db')}")
    ingest.add_argument("--bus", help=f"bus to tell the servers on (default local) {env('bus')}")
    ingest.add_argument("--blobs", metavar="URL", help=f"where image files go (default DATA/blobs) {env('blobs')}")
    ingest.add_argument("--supabase-url", help=f"a Supabase project to import into {env('supabase_url')}")
    ingest.add_argument("--supabase-key", help=f"the Supabase project's service role key {env('supabase_key')}")

    def sync_env(name: str) -> str:
        return f"(env {SYNC_ENV[name][0]})"

    sync = sub.add_parser(
        "sync",
        help="keep a folder uploaded to a project on a Fotoflo server ('fotoflo sync status' shows the queues)",
        description="Upload a folder (recursively, new and changed images) to a project on a Fotoflo server, "
        "through a persistent queue. 'fotoflo sync status [--state DIR]' shows the queues instead.",
    )
    sync.add_argument("folder", nargs="?", help="the folder to sync, or 'status'")
    sync.add_argument("--server", help=f"the server's URL, e.g. http://studio.local:5006 {sync_env('server')}")
    sync.add_argument("--project", help=f"the project to upload to (default 'default') {sync_env('project')}")
    sync.add_argument("--token", help=f"sent as 'Authorization: Bearer TOKEN' {sync_env('token')}")
    sync.add_argument("--state", type=Path, help="state directory (default: one per folder, server and project)")
    sync.add_argument("--device-name", help=f"this device's name in conflict copies {sync_env('device_name')}")
    sync.add_argument("--workers", type=int, help="uploads at once (default 2)")
    sync.add_argument("--rescan-s", type=float, help="seconds between full rescans of the folder (default 60)")
    sync.add_argument("--once", action="store_true", help="upload what is there, then exit (no watching)")
    sync.add_argument(
        "--delete", action="store_true", help="also delete on the server what is deleted from the folder (default off)"
    )
    sync.add_argument("--ui", action="store_true", help="open the sync panel in the browser instead")
    sync.add_argument("--ui-port", type=int, help="port of the sync panel (default 5007)")

    from dashboard.auth.cli import add_parsers
    from dashboard.notify.cli import add_parsers as add_notify_parsers

    data_help = f"data directory (default ~/.local/share/fotoflo) {env('data')}"
    db_help = f"database the servers share: postgresql://USER@HOST:PORT/DB (default: SQLite in DATA) {env('db')}"
    add_parsers(sub, data_help, db_help)
    add_notify_parsers(sub, data_help, db_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logs.install()  # no share link, signature, token or cookie in any line (see dashboard/logs.py)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "sync":
            from dashboard.sync.cli import run

            return run(args)
        if args.command in ("token", "share"):
            from dashboard.auth.cli import run as run_auth

            settings = Settings.from_env(
                data=args.data, db=args.db, supabase_url=args.supabase_url, supabase_key=args.supabase_key
            )
            return run_auth(args, settings)
        if args.command in ("webhook", "notify"):
            from dashboard.notify.cli import run as run_notify

            return run_notify(args, Settings.from_env(data=args.data, db=args.db))
        return _ingest(args)
    except ConfigError as exc:  # a setting that cannot work: one line naming it, no traceback
        sys.stderr.write(f"fotoflo {args.command}: {exc}\n")
        return 2


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings a subcommand's options give (each setting of `config.ENV` it has), over the environment."""
    given: dict[str, object] = {}
    for name in ENV:
        value = getattr(args, name, None)
        if isinstance(value, list):  # a repeatable option, each value maybe a comma-separated list itself
            value = tuple(item for arg in value for item in comma_list(arg))
        given[name] = value
    return Settings.from_env(None, **given)


def _serve(args: argparse.Namespace) -> int:
    from dashboard.auth import auth_required
    from dashboard.server import serve

    settings = settings_from(args)
    if args.no_watch:
        settings.watch = None
    elif settings.watch is None:
        settings.watch = settings.data / "hotfolder"
    try:
        auth_required(settings)  # refuse before Panel is even imported
        preflight.data_dir(settings.data)
        if settings.watch is not None:
            preflight.hot_folder(settings.watch)
        serve(settings)
    except ConfigError as exc:
        sys.stderr.write(f"fotoflo serve: {exc}\n")
        return 2
    except sqlite3.DatabaseError as exc:
        sys.stderr.write(f"fotoflo serve: {preflight.database_error(exc, settings.data)}\n")
        return 2
    except OSError as exc:
        if exc.errno not in preflight.BIND_ERRNOS or exc.filename is not None:
            raise
        # The port was taken between the check and the server's own bind.
        sys.stderr.write(f"fotoflo serve: {preflight.bind_error(exc, settings.address, settings.port)}\n")
        return 2
    return 0


def _iter_files(paths: list[Path]) -> list[Path]:
    """Files named on the command line, and the image files inside named folders.

    In a folder, sidecars (.xmp, .txt) and hidden files or folders are passed over; ingest still
    decides by content, so a misnamed image is refused with its reason, never trusted by its name.
    """
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        for candidate in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in candidate.relative_to(path).parts)
            if candidate.is_file() and not hidden and candidate.suffix.lower() in IMAGE_SUFFIXES:
                files.append(candidate)
    return files


def _ingest(args: argparse.Namespace) -> int:
    from dashboard.backends import blobs_for, bus_for, store_for
    from dashboard.imaging.errors import IngestError, Limits
    from dashboard.ingest import Ingestor, IngestResult
    from dashboard.quarantine import QUARANTINE_FILE, Quarantine

    settings = settings_from(args)
    try:
        preflight.existing(args.paths)
        preflight.data_dir(settings.data)
        blobs = blobs_for(settings)  # first: an unreachable bucket stops it before the store is opened
        store = store_for(settings)
    except sqlite3.DatabaseError as exc:
        raise preflight.database_error(exc, settings.data) from None
    files = _iter_files(args.paths)
    store.ensure_project(settings.project)
    bus = bus_for(settings, server=False)
    ingestor = Ingestor(
        store,
        blobs,
        bus,
        Limits(settings.max_bytes, settings.max_pixels, settings.decode_timeout_s),
        quarantine=Quarantine(settings.data / QUARANTINE_FILE),
    )
    done = 0
    width = 30

    def progress(path: Path, outcome: IngestResult | IngestError) -> None:
        nonlocal done
        done += 1
        if isinstance(outcome, IngestError):
            sys.stderr.write(f"\rrefused {outcome.filename}: {outcome.reason}\n")
        filled = width * done // max(1, len(files))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{len(files)}")
        sys.stderr.flush()

    stats = ingestor.ingest_many(files, settings.project, workers=args.workers, on_result=progress)
    ingestor.previews.wait_idle()  # the previews left for after publishing: made before this process ends
    bus.close()
    store.close()
    close_blobs = getattr(blobs, "close", None)
    if close_blobs is not None:
        close_blobs()
    sys.stderr.write("\n")
    print(
        f"{stats.created} imported, {stats.duplicates} already there, {len(stats.refused)} refused "
        f"→ project {settings.project!r} in {settings.data}"
    )
    return 1 if stats.refused else 0


if __name__ == "__main__":
    sys.exit(main())
