"""Who a request is, and what it may see: tokens, browser sessions, share links, CSRF, rate limits.

`Access` is the one place the API, the login and share pages and the Panel page ask. It is
blocking (SQLite or PostgreSQL, `dashboard.backends.auth_store_for`): async callers hop to a worker
thread. It keeps no credential in memory, so a revocation anywhere is seen at the next request;
only the rate limits are this process's own. With authentication off it answers
`OPEN` for everyone and touches no file, so the embedded default works exactly as before.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dashboard.auth.clients import TrustedProxies
from dashboard.auth.ratelimit import RateLimiter
from dashboard.auth.roles import EDIT_ANY_COLLECTION, OPEN, Principal, Role
from dashboard.auth.store import AuthStore, Guest, ShareRecord, TokenRecord, check_password
from dashboard.config import ConfigError

if TYPE_CHECKING:
    from dashboard.config import Settings
    from dashboard.events import Change
    from dashboard.store import Store

log = logging.getLogger("fotoflo.auth")

SESSION_COOKIE = "fotoflo_session"
CSRF_COOKIE = "fotoflo_csrf"
CSRF_HEADER = "X-Fotoflo-CSRF"
SESSION_TTL_S = 7 * 24 * 3600
#: Roles a share link may grant; a link to one collection at most lets its holder pick and save.
SHARE_ROLES = (Role.VIEWER, Role.CLIENT, Role.EDITOR)
COLLECTION_SHARE_ROLES = (Role.VIEWER, Role.CLIENT)


class AuthRefused(Exception):
    """A request refused: `status` and `code` for the JSON error, `retry_after_s` for a 429."""

    def __init__(self, status: int, code: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SignIn:
    """A browser session just made: its secret (the HttpOnly cookie), CSRF token and expiry."""

    session: str
    csrf: str
    expires_at: float


@dataclass(frozen=True)
class Identity:
    """The principal of a request (None: nobody signed in) and, for a browser session, its CSRF token."""

    principal: Principal | None
    csrf: str | None = None


@dataclass(frozen=True)
class Scope:
    """What a share link to one collection may see: `images` (the collection's current members) and
    `collections` (it and those its holder saved, shown with only those images).

    Everything outside is answered as absent. `shows` filters the feed; `collection_data` and
    `image_ids` narrow what a visible collection (a card, a feed entry) says about its images.
    """

    images: frozenset[str]
    collections: frozenset[str]

    def shows(self, change: Change) -> bool:
        """Whether a feed change is the link's to see."""
        if change.image is not None:
            return change.image.id in self.images
        if "collection_id" in change.data:
            return change.data["collection_id"] in self.collections
        return change.data.get("image_id") in self.images

    def image_ids(self, image_ids: Iterable[str]) -> list[str]:
        return [i for i in image_ids if i in self.images]

    def cover(self, image_id: str | None) -> str | None:
        """A cover the link may see, else None (never a signed URL of an image outside)."""
        return image_id if image_id in self.images else None

    def collection_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """A collection change's data as the link sees it: `data` itself when nothing in it is hidden.

        Ids an op puts in (`save`, `add`, `move`, ...) and a cover are narrowed to the link's images;
        a `remove` keeps its ids, so an open page drops what left (an id is no capability: every
        route answers it as absent). `count` and `index` stay as the owner's (the holder's own
        collections may count images the link no longer shows).
        """
        cover = data.get("cover_image_id")
        ids = data.get("image_ids")
        hidden_ids = data.get("op") != "remove" and isinstance(ids, list) and any(i not in self.images for i in ids)
        if (cover is None or cover in self.images) and not hidden_ids:
            return data
        out = {**data, "cover_image_id": self.cover(cover)}
        if hidden_ids:
            out["image_ids"] = self.image_ids(ids or ())
        return out


def is_loopback(address: str) -> bool:
    """Whether binding `address` serves only this machine (`''`, `0.0.0.0` and `::` serve every interface)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_required(settings: Settings) -> bool:
    """Whether the server must authenticate; `ConfigError` when it is asked to run open on the network."""
    if is_loopback(settings.address):
        return bool(settings.auth)
    if settings.auth is False:
        raise ConfigError(
            f"refusing to serve {settings.address!r} without authentication: anyone on the network could "
            "read and change the galleries. Leave --auth on (the default off loopback) or bind 127.0.0.1."
        )
    return True


class Access:
    """Authentication and authorization of one server process (see the module docstring)."""

    def __init__(
        self,
        store: AuthStore | None,
        *,
        upload_per_min: int = 0,
        failures_per_min: int = 10,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.store = store
        # Failed sign-ins per client address (unknown tokens and links): a guesser must wait. A valid
        # credential is looked up first and never waits for others' failures.
        self.failures = RateLimiter(failures_per_min, 60.0)
        # Wrong passwords per share link, from any address: a password is guessable, so its guesses
        # wait even when spread over addresses (tokens and link secrets are not: 256 and 192 random bits).
        self.credential_failures = RateLimiter(failures_per_min, 60.0)
        self.uploads = RateLimiter(upload_per_min, 60.0)
        self.proxies = proxies or TrustedProxies()

    @classmethod
    def for_settings(cls, settings: Settings, *, enabled: bool) -> Access:
        from dashboard.backends import auth_store_for

        store = auth_store_for(settings) if enabled else None
        return cls(
            store,
            upload_per_min=settings.upload_rate,
            failures_per_min=settings.login_failures,
            proxies=TrustedProxies(settings.trusted_proxy),
        )

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def ensure_owner_token(self) -> str | None:
        """With no active owner token, make one and return its secret (to be shown once); else None."""
        assert self.store is not None
        if any(t.role == Role.OWNER and t.state() == "active" for t in self.store.tokens()):
            return None
        record, secret = self.store.create_token(name="owner (created at first start)", role=Role.OWNER)
        log.warning("created owner token %s: no active owner token existed", record.id)
        return secret

    # -- who is asking ------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, session: str | None, client: str) -> Identity:
        """The identity of a request from its `Authorization` header or its session cookie.

        A bad or stale bearer token is refused (401, counted against `client`; 429 while `client`
        is locked out); a valid one is accepted even then. A session cookie that names no session is
        ignored (another server on this host may have set it).
        """
        if self.store is None:
            return Identity(OPEN)
        if authorization is not None:
            scheme, _, secret = authorization.strip().partition(" ")
            secret = secret.strip()
            if scheme.lower() != "bearer" or not secret:
                raise AuthRefused(401, "bad_authorization", "send the token as 'Authorization: Bearer TOKEN'")
            record = self.store.find_token(secret)
            if record is not None and record.state() == "active":
                return Identity(token_principal(record))
            self.check_not_locked_out(client)
            if record is None:
                raise self.failed(client, 401, "invalid_token", "this token is not valid")
            state = record.state()
            raise self.failed(client, 401, f"token_{state}", f"this token is {state}")
        if session:
            found = self.store.find_session(session)
            if found is not None:
                principal = self.session_principal(found.kind, found.subject, found.guest)
                if principal is not None:
                    return Identity(principal, csrf=found.csrf)
        return Identity(None)

    def session_principal(self, kind: str, subject: str, guest: Guest | None = None) -> Principal | None:
        """The principal a session signs in, while its token or link is still active (as `guest`, if named)."""
        assert self.store is not None
        if kind == "token":
            token = self.store.get_token(subject)
            return token_principal(token) if token is not None and token.state() == "active" else None
        share = self.store.get_share(subject)
        return share_principal(share, guest) if share is not None and share.state() == "active" else None

    def page_principal(self, session: str | None) -> Principal | None:
        """Who a page request is (by its session cookie only): for the Panel page and its websocket."""
        if self.store is None:
            return OPEN
        return self.authenticate(None, session, "").principal if session else None

    @staticmethod
    def check_csrf(identity: Identity, method: str, header: str | None) -> None:
        """A browser session's writes must carry its CSRF token (a bearer token is not sent by a browser)."""
        if identity.csrf is None or method in ("GET", "HEAD", "OPTIONS"):
            return
        if not header or not hmac.compare_digest(header.encode(), identity.csrf.encode()):
            raise AuthRefused(403, "csrf_failed", f"a signed-in browser's writes must send the {CSRF_HEADER} header")

    # -- signing in ---------------------------------------------------------------------------

    def login(self, secret: str, client: str) -> tuple[TokenRecord, SignIn]:
        """Sign a browser in with an API token (a valid one even while `client` is locked out)."""
        assert self.store is not None
        record = self.store.find_token(secret.strip()) if secret.strip() else None
        if record is None or record.state() != "active":
            self.check_not_locked_out(client)
            state = "not valid" if record is None else record.state()
            raise self.failed(client, 401, "invalid_token", f"this token is {state}")
        expires = time.time() + SESSION_TTL_S
        if record.expires_at is not None:
            expires = min(expires, record.expires_at)
        session, csrf = self.store.create_session("token", record.id, expires)
        log.info("signed in with token %s (%s) from %s", record.id, record.role.label, client)
        return record, SignIn(session, csrf, expires)

    def find_share(self, secret: str, client: str) -> ShareRecord:
        """The active share link with this secret; 404/410 (counted against `client`) otherwise.

        A link that exists is found even while `client` is locked out by failures.
        """
        assert self.store is not None
        share = self.store.find_share(secret)
        if share is None:
            self.check_not_locked_out(client)
            raise self.failed(client, 404, "unknown_share", "there is no such share link")
        state = share.state()
        if state != "active":
            raise AuthRefused(410, f"share_{state}", f"this share link is {state}")
        return share

    def open_share(
        self, secret: str, password: str | None, client: str, guest: Guest | None = None
    ) -> tuple[ShareRecord, SignIn]:
        """Sign a browser in through a share link (after its password, if it has one), as `guest` if named.

        Wrong passwords are counted against the link and the address: while the link is locked, its
        password is not checked at all (429), or guessing would go on at full speed; other links and
        tokens from the same address still work.
        """
        assert self.store is not None
        share = self.find_share(secret, client)
        if share.password_hash is not None:
            if not password:
                raise AuthRefused(401, "password_required", "this share link needs its password")
            credential = f"share:{share.id}"
            self.check_not_locked_out(client, credential, key_address=False)
            if not check_password(password, share.password_hash):
                raise self.failed(client, 401, "wrong_password", "wrong password for this share link",
                                  credential=credential)  # fmt: skip
        expires = time.time() + SESSION_TTL_S
        if share.expires_at is not None:
            expires = min(expires, share.expires_at)
        session, csrf = self.store.create_session("share", share.id, expires, guest)
        who = f" by guest {guest.id}" if guest is not None else ""
        log.info("share link %s opened%s (%s on %s) from %s", share.id, who, share.role.label, share.project, client)
        return share, SignIn(session, csrf, expires)

    def sign_out(self, session: str | None) -> None:
        if self.store is not None and session:
            self.store.delete_session(session)

    # -- limits -------------------------------------------------------------------------------

    def check_not_locked_out(self, client: str, credential: str | None = None, *, key_address: bool = True) -> None:
        """429 while `client` (or `credential`) has failed too often; call it only for what would fail
        or (a password) cannot be told apart from a guess without checking."""
        waits = [self.failures.blocked(client)] if key_address else []
        if credential is not None:
            waits.append(self.credential_failures.blocked(credential))
        wait = max(waits, default=0.0)
        if wait:
            what = f"{credential} from {client}" if credential else f"from {client}"
            log.warning("refused sign-in %s: too many failed attempts", what)
            raise AuthRefused(429, "too_many_attempts", "too many failed sign-ins; try again later", retry_after_s=wait)

    def failed(
        self, client: str, status: int, code: str, message: str, *, credential: str | None = None
    ) -> AuthRefused:
        """Count a failed sign-in against `client` (and `credential`); the refusal to raise."""
        self.failures.hit(client)
        if credential is not None:
            self.credential_failures.hit(credential)
        log.warning("failed sign-in from %s: %s%s", client, code, f" ({credential})" if credential else "")
        return AuthRefused(status, code, message)

    def check_upload_rate(self, principal: Principal, client: str) -> None:
        if self.store is None:
            return  # authentication off: as before, no limits but the sizes
        key = principal.key if principal.kind != "open" else client
        wait = self.uploads.hit(key)
        if wait:
            raise AuthRefused(429, "too_many_uploads", "too many uploads; slow down", retry_after_s=wait)

    # -- what a principal may see and change --------------------------------------------------

    def visible_collections(self, principal: Principal, project: str) -> set[str] | None:
        """The collections a link to one collection shows: it and those its holder saved (None: all)."""
        if principal.collection_id is None or self.store is None:
            return None
        return {principal.collection_id} | self.store.collections_owned(project, principal.key)

    def scope(self, store: Store, principal: Principal, project: str) -> Scope | None:
        """What a link to one collection shows now (None: the whole project).

        Its images are the shared collection's current members only (none once it is deleted): the
        collections its holder saved show no more than that, so an image the owner takes out of the
        shared collection leaves every route, list and stream of the link, whatever the holder kept.
        """
        collections = self.visible_collections(principal, project)
        if collections is None or principal.collection_id is None:
            return None
        shared = store.get_collection(project, principal.collection_id)
        images = frozenset(shared.image_ids) if shared is not None and not shared.deleted else frozenset()
        return Scope(images, frozenset(collections))

    def visible_images(self, store: Store, principal: Principal, project: str) -> frozenset[str] | None:
        """The images such a principal sees: the shared collection's current members (None: all)."""
        scope = self.scope(store, principal, project)
        return None if scope is None else scope.images

    def may_edit_collection(self, principal: Principal, project: str, collection_id: str) -> bool:
        role = principal.role_in(project)
        if role is None:
            return False
        if role >= EDIT_ANY_COLLECTION or self.store is None:
            return True
        return self.store.collection_owner(project, collection_id) == principal.key

    def record_collection(self, principal: Principal, project: str, collection_id: str) -> None:
        """Remember who saved a collection, so a client may edit what they saved."""
        if self.store is not None and principal.kind != "open":
            self.store.set_collection_owner(project, collection_id, principal.key)

    def projects_seen(self, principal: Principal, projects: Iterable[str]) -> list[str]:
        return [p for p in projects if principal.sees_project(p)]


def token_principal(token: TokenRecord) -> Principal:
    return Principal("token", token.id, token.name, token.role, token.project)


def share_principal(share: ShareRecord, guest: Guest | None = None) -> Principal:
    name = guest.name if guest is not None else share.name or f"share {share.id}"
    return Principal(
        "share", share.id, name, share.role, share.project, share.collection_id, guest.id if guest else None,
        share.download, share.watermark_version if share.watermarked else 0,
    )  # fmt: skip


def check_share_role(role: Role, collection_id: str | None) -> None:
    """`ValueError` unless a share link may grant `role` (a collection's link: viewer or client)."""
    allowed = COLLECTION_SHARE_ROLES if collection_id else SHARE_ROLES
    if role not in allowed:
        what = "a collection's share link" if collection_id else "a share link"
        raise ValueError(f"{what} grants {' or '.join(r.label for r in allowed)}, not {role.label}")
