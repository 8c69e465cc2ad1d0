"""`fotoflo token create|list|revoke` and `fotoflo share create|list|revoke`, on a data directory.

They write the auth store directly, like `fotoflo ingest` writes the image store: `DATA/auth.sqlite`,
or with `--db postgresql://…` the database the servers share, or with `--supabase-url` and
`--supabase-key` their Supabase project. No running server is needed, and
every running one sees each change (a revoked token or link) at its next request. Secrets are
printed once, on stdout, and never again.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dashboard.auth.access import check_share_role
from dashboard.auth.roles import ANY_PROJECT, ROLE_NAMES, Role
from dashboard.auth.store import DEFAULT_DOWNLOAD, DOWNLOADS, AuthStore, check_share_rules
from dashboard.config import Settings

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float | None:
    """`90m`, `12h`, `7d`, `2w` → seconds; `never` → None."""
    text = text.strip().lower()
    if text == "never":
        return None
    match = _DURATION.fullmatch(text)
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90m, 12h, 7d, 2w or never")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], data_help: str, db_help: str) -> None:
    """Add the `token` and `share` subcommands to the `fotoflo` parser."""
    roles = ", ".join(ROLE_NAMES)
    token = sub.add_parser("token", help="make, list and revoke API tokens (for the API, sync and sign-in)")
    token_sub = token.add_subparsers(dest="action", required=True)
    create = token_sub.add_parser("create", help="make a token and print it (only this once)")
    create.add_argument("--role", required=True, type=Role.parse, help=f"one of {roles}")
    create.add_argument("--project", default=ANY_PROJECT, help="the one project it grants (default: every project)")
    create.add_argument("--name", default="", help="who or what it is for, shown by 'list'")
    create.add_argument("--expires", type=parse_duration, default=None, help="e.g. 12h, 30d (default: never)")
    token_sub.add_parser("list", help="list the tokens (never their secrets)")
    revoke = token_sub.add_parser("revoke", help="revoke a token: its requests and sessions stop at once")
    revoke.add_argument("id", help="the token's id, as 'list' shows it")

    share = sub.add_parser("share", help="make, list and revoke share links to a project or a collection")
    share_sub = share.add_subparsers(dest="action", required=True)
    create = share_sub.add_parser("create", help="make a share link and print its URL (only this once)")
    create.add_argument("--project", required=True, help="the project shared")
    create.add_argument("--collection", help="share only this collection (its id) of the project")
    create.add_argument("--role", type=Role.parse, default=Role.CLIENT, help="viewer, client (default) or editor")
    create.add_argument("--expires", type=parse_duration, default=parse_duration("30d"), help="default 30d; never")
    create.add_argument("--password", action="store_true", help="ask for a password (read from stdin if piped)")
    create.add_argument("--name", default="", help="a label, e.g. the client's name")
    create.add_argument("--url", default="http://127.0.0.1:5006", help="the server's address, for the printed link")
    create.add_argument(
        "--download", choices=DOWNLOADS, default=DEFAULT_DOWNLOAD,
        help="what its holder may download: the originals (default, as links always could), the preview, or none",
    )  # fmt: skip
    create.add_argument("--watermark", help="a text burned into every preview and thumbnail the link shows")
    create.add_argument("--qr", type=Path, help="also write the link's QR code here (.svg or .png)")
    list_ = share_sub.add_parser("list", help="list the share links (never their secrets)")
    list_.add_argument("--project", help="only this project's")
    revoke = share_sub.add_parser("revoke", help="revoke a share link: its sessions end at once")
    revoke.add_argument("id", help="the link's id, as 'list' shows it")
    for parser in (*token_sub.choices.values(), *share_sub.choices.values()):
        parser.add_argument("--data", type=Path, help=data_help)
        parser.add_argument("--db", help=db_help)
        parser.add_argument("--supabase-url", help="the Supabase project the servers share (env SUPABASE_URL)")
        parser.add_argument("--supabase-key", help="its service role key (env SUPABASE_KEY)")


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `fotoflo token|share ACTION` on the auth store of `settings` (Supabase's, `--db`'s, else the data
    directory's)."""
    from dashboard.backends import auth_store_for

    store = auth_store_for(settings)
    try:
        if args.command == "token":
            return _token(args, store)
        return _share(args, store, settings)
    finally:
        store.close()


def _token(args: argparse.Namespace, store: AuthStore) -> int:
    if args.action == "create":
        expires = time.time() + args.expires if args.expires else None
        record, secret = store.create_token(name=args.name, role=args.role, project=args.project, expires_at=expires)
        scope = "every project" if record.project == ANY_PROJECT else f"project {record.project!r}"
        sys.stderr.write(f"token {record.id}: {record.role.label} of {scope}, expires {_when(expires)}\n")
        print(secret)
        return 0
    if args.action == "list":
        for t in store.tokens():
            print(
                f"{t.id}  {t.role.label:<7} {t.project:<16} {t.state():<8} expires {_when(t.expires_at):<20} {t.name}"
            )
        return 0
    if not store.revoke_token(args.id):
        sys.stderr.write(f"no active token {args.id!r}\n")
        return 1
    print(f"revoked token {args.id}")
    return 0


def _share(args: argparse.Namespace, store: AuthStore, settings: Settings) -> int:
    if args.action == "list":
        for s in store.shares(args.project):
            what = f"collection {s.collection_id}" if s.collection_id else "whole project"
            lock = "password" if s.password_hash else "no password"
            mark = "watermark" if s.watermarked else "-"
            print(f"{s.id}  {s.role.label:<7} {s.project:<16} {what:<24} {s.state():<8} "
                  f"expires {_when(s.expires_at):<20} {lock:<11} download {s.download:<8} {mark:<9} "
                  f"{s.name}")  # fmt: skip
        return 0
    if args.action == "revoke":
        if not store.revoke_share(args.id):
            sys.stderr.write(f"no active share link {args.id!r}\n")
            return 1
        print(f"revoked share link {args.id}")
        return 0
    try:
        check_share_role(args.role, args.collection)
        check_share_rules(args.download, args.watermark)
        if args.qr is not None and args.qr.suffix.lower() not in (".svg", ".png"):
            raise ValueError(f"--qr {args.qr}: the file must end in .svg or .png")
        _check_target(settings, args.project, args.collection)
    except ValueError as exc:
        sys.stderr.write(f"fotoflo share create: {exc}\n")
        return 2
    password = None
    if args.password:
        password = getpass.getpass("Password for the link: ") if sys.stdin.isatty() else sys.stdin.readline()
        password = password.rstrip("\r\n")
        if not password:
            sys.stderr.write("fotoflo share create: the password is empty\n")
            return 2
    expires = time.time() + args.expires if args.expires else None
    share, secret = store.create_share(
        project=args.project, role=args.role, name=args.name, collection_id=args.collection,
        expires_at=expires, password=password, download=args.download, watermark=args.watermark,
    )  # fmt: skip
    what = f"collection {share.collection_id} of" if share.collection_id else "project"
    mark = f", watermark {share.watermark_text!r}" if share.watermark_text else ""
    sys.stderr.write(f"share link {share.id}: {share.role.label} of {what} {share.project!r}, expires {_when(expires)}"
                     f"{', with a password' if password else ''}, download {share.download}{mark}\n")  # fmt: skip
    url = f"{args.url.rstrip('/')}/s/{secret}"
    print(url)
    if args.qr is not None:
        from dashboard import qrcodes

        # Now or never: the secret is kept only as its hash.
        args.qr.write_bytes(qrcodes.svg(url) if args.qr.suffix.lower() == ".svg" else qrcodes.png(url))
        sys.stderr.write(f"its QR code: {args.qr}\n")
    return 0


def _check_target(settings: Settings, project: str, collection_id: str | None) -> None:
    """`ValueError` unless the project (and the collection in it) exists in the image store of `settings`."""
    from dashboard.backends import store_for

    store = store_for(settings)
    try:
        if not store.has_project(project):
            raise ValueError(f"there is no project {project!r}")
        if collection_id is not None:
            collection = store.get_collection(project, collection_id)
            if collection is None or collection.deleted:
                raise ValueError(f"there is no collection {collection_id!r} in project {project!r}")
    finally:
        store.close()
