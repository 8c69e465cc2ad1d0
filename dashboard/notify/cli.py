"""`fotoflo webhook add|list|remove` and `fotoflo notify email add|list|remove`, `fotoflo notify outbox`.

Like `fotoflo token`, they write the notifications' store directly (`DATA/notify.sqlite`, or with `--db
postgresql://…` the database the servers share): no running server is needed, and the sender sees each
change at its next pass. A webhook's secret is printed once, on stdout, and never again.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from dashboard.config import Settings
from dashboard.notify.deliver import check_address, check_webhook_url
from dashboard.notify.digest import NOTIFY_KINDS, check_events
from dashboard.notify.store import NotifyStore


def _events_arg(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], data_help: str, db_help: str) -> None:
    """Add the `webhook` and `notify` subcommands to the `fotoflo` parser."""
    webhook = sub.add_parser("webhook", help="add, list and remove the webhooks that get a project's digests")
    webhook_sub = webhook.add_subparsers(dest="action", required=True)
    add = webhook_sub.add_parser("add", help="add a webhook and print its signing secret (only this once)")
    add.add_argument("url", help="where the digests are POSTed: an http:// or https:// URL")
    add.add_argument("--project", default="default", help="the project whose digests it gets (default 'default')")
    add.add_argument(
        "--events", type=_events_arg, default=None,
        help=f"comma-separated kinds it is told about (default all: {','.join(NOTIFY_KINDS)})",
    )  # fmt: skip
    list_ = webhook_sub.add_parser("list", help="list the webhooks (never their secrets)")
    list_.add_argument("--project", help="only this project's")
    remove = webhook_sub.add_parser("remove", help="remove a webhook: it gets nothing more")
    remove.add_argument("id", help="the webhook's id, as 'list' shows it")

    notify = sub.add_parser("notify", help="e-mail recipients of a project's digests, and the outbox")
    notify_sub = notify.add_subparsers(dest="what", required=True)
    email = notify_sub.add_parser("email", help="add, list and remove e-mail recipients")
    email_sub = email.add_subparsers(dest="action", required=True)
    add = email_sub.add_parser("add", help="send the project's digests to this address (needs serve --smtp)")
    add.add_argument("address")
    add.add_argument("--project", default="default", help="the project (default 'default')")
    list_ = email_sub.add_parser("list", help="list the recipients")
    list_.add_argument("--project", help="only this project's")
    remove = email_sub.add_parser("remove", help="send this address nothing more")
    remove.add_argument("address")
    remove.add_argument("--project", default="default", help="the project (default 'default')")
    outbox = notify_sub.add_parser("outbox", help="the newest notifications and whether they were delivered")
    outbox.add_argument("--project", help="only this project's")
    outbox.set_defaults(action=None)
    for parser in (*webhook_sub.choices.values(), *email_sub.choices.values(), outbox):
        parser.add_argument("--data", type=Path, help=data_help)
        parser.add_argument("--db", help=db_help)


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `fotoflo webhook|notify …` on the notifications' store of `settings`."""
    from dashboard.backends import notify_store_for

    store = notify_store_for(settings)
    try:
        if args.command == "webhook":
            return _webhook(args, store, settings)
        if args.what == "email":
            return _email(args, store, settings)
        for item in store.outbox(args.project):
            print(f"{item.id}  {item.project:<16} {item.channel:<7} {item.state:<9} attempts {item.attempts:<3} "
                  f"{_when(item.created_at)}  {item.target}  {item.last_error or ''}")  # fmt: skip
        return 0
    except ValueError as exc:
        what = " ".join(str(w) for w in (args.command, getattr(args, "what", None), args.action) if w)
        sys.stderr.write(f"fotoflo {what}: {exc}\n")
        return 2
    finally:
        store.close()


def _webhook(args: argparse.Namespace, store: NotifyStore, settings: Settings) -> int:
    if args.action == "list":
        for hook in store.webhooks(args.project):
            print(f"{hook.id}  {hook.project:<16} {','.join(hook.events):<48} {hook.url}")
        return 0
    if args.action == "remove":
        if store.remove_webhook(args.id) is None:
            sys.stderr.write(f"no webhook {args.id!r}\n")
            return 1
        print(f"removed webhook {args.id}")
        return 0
    url, events = check_webhook_url(args.url), check_events(args.events)
    hook, secret = store.add_webhook(args.project, url, events, start_seq=_last_seq(settings, args.project))
    sys.stderr.write(f"webhook {hook.id}: {url} gets the digests of {hook.project!r} ({', '.join(events)}); "
                     "its signing secret, shown only now:\n")  # fmt: skip
    print(secret)
    return 0


def _email(args: argparse.Namespace, store: NotifyStore, settings: Settings) -> int:
    if args.action == "list":
        for project, address in store.emails(args.project):
            print(f"{project:<16} {address}")
        return 0
    address = check_address(args.address)
    if args.action == "remove":
        if not store.remove_email(args.project, address):
            sys.stderr.write(f"{address} is not a recipient of {args.project!r}\n")
            return 1
        print(f"removed {address} from {args.project!r}")
        return 0
    added = store.add_email(args.project, address, start_seq=_last_seq(settings, args.project))
    print(f"{address} gets the digests of {args.project!r}" if added else f"{address} already gets them")
    return 0


def _last_seq(settings: Settings, project: str) -> int:
    """The project's newest feed entry (its digests start after it); `ValueError` if there is no such project."""
    from dashboard.backends import store_for
    from dashboard.store import UnknownProject

    store = store_for(settings)
    try:
        if not store.has_project(project):
            raise ValueError(f"there is no project {project!r}")
        try:
            return store.last_seq(project)
        except UnknownProject:
            raise ValueError(f"there is no project {project!r}") from None
    finally:
        store.close()
