"""The browser's way in when authentication is on: `/login`, `/logout`, share links `/s/{secret}`,
and the Bokeh auth provider that keeps the Panel page (and its websocket) behind them.

A browser is signed in by a server-side session: an HttpOnly cookie holding its secret, and a
readable CSRF cookie whose value the page sends back in `X-Fotoflo-CSRF` on every write. Both
are `SameSite=Lax`, and `Secure` when the request came over HTTPS. Refusals answer JSON to
programs and a small page to browsers (by `Accept`), always with a 4xx status, and are logged.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from bokeh.server.auth_provider import AuthProvider
from tornado import web

from dashboard.auth.access import CSRF_COOKIE, SESSION_COOKIE, Access, AuthRefused, SignIn
from dashboard.auth.ratelimit import retry_after
from dashboard.auth.roles import ANY_PROJECT, Action, Principal, Role
from dashboard.auth.store import MAX_GUEST_NAME_CHARS, Guest, ShareRecord
from dashboard.guard import foreign_page
from dashboard.http.favorites import person
from dashboard.i18n import COOKIE as LANG_COOKIE
from dashboard.i18n import negotiate, t, t_html

if TYPE_CHECKING:
    from dashboard.app import App

#: The catalogue's name of each role, as the "Open this link?" page says it ("Kunde" in German).
ROLE_NAMES = {
    Role.VIEWER: "role.viewer",
    Role.CLIENT: "role.client",
    Role.EDITOR: "role.editor",
    Role.OWNER: "role.owner",
}

log = logging.getLogger("fotoflo.auth")

MAX_FORM_BYTES = 64 * 1024
LOGIN_PATH = "/login"

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="same-origin"><title>{title} · Fotoflo</title>
<style>
body {{ font: 16px system-ui, sans-serif; background: #141414; color: #eee; display: grid;
  place-items: center; min-height: 90vh; margin: 0; }}
form, .box {{ background: #222; padding: 2em; border-radius: 8px; box-sizing: border-box;
  width: min(24em, calc(100vw - 2em)); }}
input {{ display: block; width: 100%; box-sizing: border-box; margin: .5em 0 1em; padding: .5em; }}
button {{ padding: .5em 1.5em; }} .error {{ color: #ff8a80; }}
h1 {{ margin-top: 0; }} :focus-visible {{ outline: 2px solid #fff; outline-offset: 2px; }}
</style></head><body><main>{body}</main></body></html>"""


def _page(lang: str, title: str, body: str) -> str:
    return _PAGE.format(lang=lang, title=html.escape(title), body=body)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (no `//host`, no scheme)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


@web.stream_request_body
class PageHandler(web.RequestHandler):
    """Base of the sign-in pages: small form bodies only, refusals as a page or JSON."""

    app: App
    access: Access

    def initialize(self, app: App) -> None:
        self.app = app
        self.access = app.access
        self._chunks: list[bytes] = []
        self._size = 0
        self._early = True  # refused in `prepare`: before the body is read (see `ApiHandler.write_error`)

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")

    def prepare(self) -> None:
        if not self.access.enabled:
            raise AuthRefused(404, "auth_off", "authentication is off on this server: open / directly")
        declared = self.request.headers.get("Content-Length", "0")
        if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
            raise AuthRefused(413, "body_too_large", f"a form here is at most {MAX_FORM_BYTES} bytes")
        # Login CSRF: another site's page (or a sandboxed one, `Origin: null`) must not sign this browser in.
        if self.request.method == "POST" and foreign_page(self.request.headers, self.request.host) is not None:
            raise AuthRefused(403, "bad_origin", "this form may only be sent from this server's own pages")
        self._early = False

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= MAX_FORM_BYTES:
            self._chunks.append(chunk)

    def form(self, name: str) -> str | None:
        if self._size > MAX_FORM_BYTES:
            raise AuthRefused(413, "body_too_large", f"a form here is at most {MAX_FORM_BYTES} bytes")
        fields = parse_qs(b"".join(self._chunks).decode("utf-8", "replace"), max_num_fields=20)
        values = fields.get(name)
        return values[0] if values else None

    @property
    def client(self) -> str:
        return self.access.proxies.client(self.request)  # X-Forwarded-For only from a --trusted-proxy

    @property
    def lang(self) -> str:
        """The page's language: the `fotoflo_lang` cookie's, else the best of `Accept-Language` (dashboard/i18n.py)."""
        return negotiate(self.request.headers.get("Accept-Language"), self.get_cookie(LANG_COOKIE))

    def wants_html(self) -> bool:
        return "text/html" in self.request.headers.get("Accept", "")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AuthRefused):
            code, message = exc.code, exc.message
            if exc.retry_after_s is not None:
                self.set_header("Retry-After", retry_after(exc.retry_after_s))
            log.warning("refused %s %s from %s: %d %s", self.request.method, self.request.path.split("/s/")[0],
                        self.client, status_code, code)  # fmt: skip
        elif isinstance(exc, web.HTTPError) and status_code < 500:
            code, message = "http_error", exc.log_message or "refused"
        else:
            code, message = "internal_error", "the server could not complete the request"
        if self._early:
            self.set_header("Connection", "close")
        if self.wants_html():
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Language", self.lang)
            self.finish(self.error_page(code, message))
        else:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": {"code": code, "message": message}}))

    def error_page(self, code: str, message: str) -> str:
        return _page(
            self.lang,
            t(self.lang, "refused.title"),
            f'<div class="box"><p class="error">{html.escape(message)}</p></div>',
        )

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, AuthRefused):
            if not self._finished:
                self.set_status(e.status)
                self.write_error(e.status, exc_info=(type(e), e, None))
            return
        super()._handle_request_exception(e)

    def sign_in(self, signed_in: SignIn) -> None:
        secure = self.access.proxies.is_https(self.request)  # directly, or as a --trusted-proxy says
        expires = signed_in.expires_at
        self.set_cookie(SESSION_COOKIE, signed_in.session, path="/", expires=expires, httponly=True, secure=secure,
                        samesite="Lax")  # fmt: skip
        # Readable by the page, which sends it back in X-Fotoflo-CSRF on writes.
        self.set_cookie(CSRF_COOKIE, signed_in.csrf, path="/", expires=expires, secure=secure, samesite="Lax")


class LoginHandler(PageHandler):
    """`GET /login`: the form; `POST /login` with `token` (an API token) signs the browser in."""

    def login_form(self, message: str = "") -> str:
        target = html.escape(safe_next(self.get_argument("next", None)), quote=True)
        error = f'<p class="error">{html.escape(message)}</p>' if message else ""
        lang = self.lang
        return _page(
            lang,
            t(lang, "signin.title"),
            f'<form method="post" action="{LOGIN_PATH}?next={quote(target, safe="/")}"><h1>Fotoflo</h1>{error}'
            f'<label>{t_html(lang, "signin.token")}<input name="token" type="password" '
            'autocomplete="current-password" autofocus required></label>'
            f'<button type="submit">{t_html(lang, "signin.submit")}</button></form>',
        )

    def error_page(self, code: str, message: str) -> str:
        return self.login_form(message)

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Language", self.lang)
        self.finish(self.login_form())

    async def post(self) -> None:
        token = self.form("token") or ""
        _, signed_in = await asyncio.to_thread(self.access.login, token, self.client)
        self.sign_in(signed_in)
        self.redirect(safe_next(self.get_argument("next", None)), status=303)


class LogoutHandler(PageHandler):
    """`POST /logout` (or `GET`): ends the browser's session, back to the login form."""

    def get(self) -> None:
        self.post()

    def post(self) -> None:
        self.access.sign_out(self.get_cookie(SESSION_COOKIE))
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.clear_cookie(CSRF_COOKIE, path="/")
        self.redirect(LOGIN_PATH, status=303)


def gallery_path(share: ShareRecord) -> str:
    """Where a share link leads: its project's gallery; a client's link to a collection opens Collection mode."""
    path = f"/?project={quote(share.project, safe='')}"
    if share.collection_id is not None and share.role >= Role.CLIENT:
        path += "&mode=collection"
    return path


class ShareLinkHandler(PageHandler):
    """`/s/{secret}`: opens a share link (asking its password first, if it has one)."""

    def password_form(self, message: str = "") -> str:
        error = f'<p class="error">{html.escape(message)}</p>' if message else ""
        lang = self.lang
        return _page(
            lang,
            t(lang, "password.title"),
            f'<form method="post"><h1>{t_html(lang, "password.heading")}</h1>{error}'
            f'<label>{t_html(lang, "password.label")}<input name="password" type="password" '
            'autocomplete="current-password" autofocus required></label>'
            f'<button type="submit">{t_html(lang, "password.submit")}</button></form>',
        )

    def guest_form(self, share: ShareRecord, message: str = "") -> str:
        """Asked once, when a browser first opens a link that lets its holder mark and pick: who they are."""
        error = f'<p class="error">{html.escape(message)}</p>' if message else ""
        lang = self.lang
        password = (
            f'<label>{t_html(lang, "password.label")}<input name="password" type="password" '
            'autocomplete="current-password" required></label>'
            if share.password_hash is not None
            else ""
        )
        return _page(
            lang,
            t(lang, "guest.title"),
            f'<form method="post"><h1>{t_html(lang, "guest.heading")}</h1>{error}<p>{t_html(lang, "guest.explain")}</p>'
            f'<label>{t_html(lang, "guest.name")}<input name="name" autocomplete="name" '
            f'maxlength="{MAX_GUEST_NAME_CHARS}" autofocus required></label>'
            f'<label>{t_html(lang, "guest.email")}<input name="email" type="email" autocomplete="email"></label>'
            f'{password}<button type="submit" data-testid="guest-open">{t_html(lang, "guest.submit")}</button></form>',
        )

    def error_page(self, code: str, message: str) -> str:
        share = getattr(self, "_share", None)
        if share is not None and code in ("bad_guest", "password_required", "wrong_password"):
            return self.guest_form(share, message if code != "password_required" else "")
        if code in ("password_required", "wrong_password"):
            return self.password_form(message if code == "wrong_password" else "")
        return super().error_page(code, message)

    def switch_form(self, current: Principal, share: ShareRecord) -> str:
        """Asked before a link replaces the browser's session: who it is now, who the link makes it."""
        lang = self.lang
        now = html.escape(f"{current.name} ({t(lang, ROLE_NAMES[current.role])})")
        then = html.escape(
            t(lang, "switch.share", name=share.name or t(lang, "switch.a_link"), role=t(lang, ROLE_NAMES[share.role]),
              project=share.project)
        )  # fmt: skip
        password = (
            f'<label>{t_html(lang, "password.label")}<input name="password" type="password" '
            'autocomplete="current-password" required></label>'
            if share.password_hash is not None
            else ""
        )
        link_name = html.escape(share.name or t(lang, "switch.the_link"))
        return _page(
            lang,
            t(lang, "switch.title"),
            f'<form method="post"><h1>{t_html(lang, "switch.heading")}</h1>'
            f"<p>{t_html(lang, 'switch.now', who=f'<b>{now}</b>')}</p>"
            f"<p>{t_html(lang, 'switch.then', who=f'<b>{then}</b>')}</p>{password}"
            f'<button type="submit" data-testid="switch">{t_html(lang, "switch.open_as", name=link_name)}</button>'
            f' <a href="/" data-testid="stay">{t_html(lang, "switch.stay", name=html.escape(current.name))}</a></form>',
        )

    async def get(self, secret: str) -> None:
        share = await asyncio.to_thread(self.access.find_share, secret, self.client)
        # Login CSRF: a link (from anyone's page) must not silently replace who this browser is signed in as.
        current = await asyncio.to_thread(self.access.page_principal, self.get_cookie(SESSION_COOKIE))
        if current is not None and not (current.kind == "share" and current.id == share.id):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Language", self.lang)
            self.finish(self.switch_form(current, share))
            return
        if current is not None and current.guest is not None:
            self.redirect(gallery_path(share), status=303)  # a named guest is asked once: they stay who they are
            return
        if current is None and share.role >= Role.CLIENT and self.wants_html():
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(self.guest_form(share))
            return
        if share.password_hash is not None and self.wants_html():
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Language", self.lang)
            self.finish(self.password_form())
            return
        await self.open(secret, None)

    async def post(self, secret: str) -> None:
        """Open the link with its `password`; with a `name` (and maybe an `email`) the session acts as that guest."""
        name, email = self.form("name"), self.form("email")
        guest = None
        if name is not None:
            # The guest form's errors show it again (with the password field, if the link has one).
            self._share: ShareRecord | None = await asyncio.to_thread(self.access.find_share, secret, self.client)
            try:
                guest = Guest.named(name, email)
            except ValueError as exc:
                raise AuthRefused(400, "bad_guest", str(exc)) from None
        await self.open(secret, self.form("password"), guest)

    async def open(self, secret: str, password: str | None, guest: Guest | None = None) -> None:
        share, signed_in = await asyncio.to_thread(self.access.open_share, secret, password, self.client, guest)
        self.sign_in(signed_in)
        self.redirect(gallery_path(share), status=303)


class PageAuth(AuthProvider):
    """Bokeh's auth hook: the Panel page and its websocket need a signed-in session (else `/login`)."""

    def __init__(self, access: Access) -> None:
        self._access = access
        super().__init__()

    @property
    def get_user(self) -> Any:
        def user(handler: web.RequestHandler) -> str | None:
            principal = self._access.page_principal(handler.get_cookie(SESSION_COOKIE))
            return principal.key if principal is not None else None

        return user

    @property
    def login_url(self) -> str:
        return LOGIN_PATH


def page_project(access: Access, cookies: dict[str, str], project: str) -> str:
    """The project a page shows: the one asked for, unless the session grants a single other one."""
    if not access.enabled:
        return project
    principal = access.page_principal(cookies.get(SESSION_COOKIE))
    if principal is None or principal.project == ANY_PROJECT:
        return project
    return principal.project


def page_person(access: Access, cookies: dict[str, str], project: str) -> dict[str, str]:
    """Who this page's session is in `project`: `{"name", "role"}`, the name their favourites are shown
    under (as the favourites API has it) and their role there ('' for none): the page's hearts follow it."""
    principal = access.page_principal(cookies.get(SESSION_COOKIE))
    role = principal.role_in(project) if principal is not None else None
    if principal is None or role is None:
        return {"name": "", "role": ""}
    return {"name": person(principal)[0], "role": role.label}


def page_sees_whole_project(access: Access, cookies: dict[str, str], project: str) -> bool:
    """Whether this page's session may see all of `project` (the studio dashboard counts all of it).

    Not a collection's share link, whose guests see only that collection's images.
    """
    if not access.enabled:
        return True
    principal = access.page_principal(cookies.get(SESSION_COOKIE))
    return principal is not None and principal.collection_id is None and principal.may(Action.VIEW, project)


def page_download(access: Access, cookies: dict[str, str]) -> str:
    """What this page's session may download: a share link's rule, else `original` (the server enforces it)."""
    if not access.enabled:
        return "original"
    principal = access.page_principal(cookies.get(SESSION_COOKIE))
    return principal.download if principal is not None else "original"


def wall_qr(access: Access, cookies: dict[str, str], project: str, link: str, origin: str) -> str:
    """The QR code of the share link `link` (`/s/SECRET`, or its URL) as a `data:` URL, for the wall's corner.

    Only for a session that manages `project` and only for an active link to it: the wall's URL carries the
    secret (only its hash is kept), so whoever opened it has the link already; nobody else is shown one, and
    a guessed secret is answered like no secret (''), never counted as a sign-in. A path is made a URL on
    `origin` (the page's own).
    """
    from dashboard import qrcodes

    parsed = qrcodes.link_secret(link)
    if not access.enabled or access.store is None or parsed is None:
        return ""
    principal = access.page_principal(cookies.get(SESSION_COOKIE))
    if principal is None or not principal.may(Action.MANAGE, project):
        return ""
    secret, given_origin = parsed
    share = access.store.find_share(secret)
    if share is None or share.project != project or share.state() != "active":
        return ""
    return qrcodes.svg_data_url(f"{given_origin or origin}/s/{secret}")
