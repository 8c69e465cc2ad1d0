"""The server's boundary: which `Host` it answers to, which origins may write to it or read it cross-origin.

`HostGuard` wraps the tornado application of `fotoflo serve` (page, API, files, SSE, the Bokeh
websocket and static files) and of the notebook's embedded server: every request whose `Host` is not
one of this server's names is answered `421` before any routing, which is what stops DNS rebinding
(a page of `http://rebind.example:5006/` whose name now resolves to 127.0.0.1 is same-origin with
that name, not with Fotoflo). `Boundary` holds the names, the origins allowed to write and to read
cross-origin (`--cors-origin`), and the embedded server's per-process token.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Awaitable, Iterable
from typing import Any
from urllib.parse import urlsplit

from tornado import httputil

log = logging.getLogger("fotoflo.guard")

WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def split_host(host: str) -> str:
    """The name of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`), lower case, without the port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def machine_names() -> set[str]:
    """This machine's host names and the addresses they resolve to (for a server bound to every interface)."""
    names: set[str] = set()
    for name in {socket.gethostname(), socket.getfqdn()}:
        if not name:
            continue
        names.add(name.lower())
        if "." not in name:
            names.add(f"{name.lower()}.local")  # its mDNS name, as phones on the studio's network use it
        try:
            for *_, sockaddr in socket.getaddrinfo(name, None):
                names.add(str(sockaddr[0]).split("%", 1)[0].lower())
        except OSError:
            pass
    # The address of the default route: the one a phone on the LAN types, even if the name resolves elsewhere.
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))  # UDP: nothing is sent
                names.add(str(probe.getsockname()[0]).lower())
        except OSError:
            pass
    return names


def check_origin(origin: str, setting: str = "--cors-origin") -> str:
    """`origin` as compared with a request's `Origin` (`scheme://host[:port]`), or ValueError naming `setting`."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ValueError(
            f"{setting} {origin!r} is not an origin: give scheme, host and port only, e.g. http://studio.local:8080"
        )
    if "*" in parts.netloc or "@" in parts.netloc:
        raise ValueError(f"{setting} {origin!r}: name each origin exactly (no '*', no user)")
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_host(name: str, setting: str = "--allowed-host") -> tuple[str, int | None]:
    """An `--allowed-host` entry as (host name or address in lower case, port or None), or ValueError naming `setting`.

    The port is the one its pages are reached on when a proxy serves them on a port other than the
    server's, 80 or 443 (`photos.example.com:8443`): their websocket is then allowed from that port.
    """
    text = name.strip().lower()
    host, port = text.rstrip("."), None
    if text.startswith("["):  # [v6] or [v6]:port
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest or None
    elif text.count(":") == 1:
        host, port = text.split(":")
        host = host.rstrip(".")
    if (
        not host
        or any(c in host for c in "/*@ ,[]")
        or (port is not None and not (port.isdigit() and 0 < int(port) < 65536))
    ):
        raise ValueError(f"{setting} {name!r} is not a host name: give the name (and a port), e.g. studio.local")
    return host, int(port) if port else None


class Boundary:
    """Who may reach one server: its names (`Host`), the origins that may write and read, a token.

    `hosts`: the names a request's `Host` may carry. `cors_origins`: exact origins given
    `Access-Control-Allow-Origin` and allowed to write besides the server's own (the notebook's
    embedded server adds its page's origin at run time). `token`: if set (the embedded server), every
    API request must send `Authorization: Bearer TOKEN`.
    """

    def __init__(
        self,
        address: str,
        port: int,
        *,
        allowed_hosts: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
        token: str | None = None,
    ) -> None:
        self.port = port
        self.everywhere = address in WILDCARD_ADDRESSES
        named = [check_host(h) for h in allowed_hosts]
        hosts = {*LOOPBACK_NAMES, *(host for host, _ in named)}
        #: `host:port` of pages reached through a proxy on another port (`--allowed-host NAME:PORT`).
        self.public_origins = {f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h, port in named if port}
        if not self.everywhere:
            hosts.add(split_host(address) if address.startswith("[") else address.lower())
        else:
            hosts |= machine_names()
        self.hosts = hosts
        self.cors_origins: set[str] = {check_origin(o) for o in cors_origins}
        self.token = token
        self.ws_origins: set[str] | None = None  # Bokeh's websocket origin list, once `server.guard` set it

    # -- Host ---------------------------------------------------------------------------------

    def allows_host(self, host: str | None, local_address: str | None = None) -> bool:
        """Whether a request with this `Host` is for this server; `local_address`: where it was received."""
        if not host:
            return False
        name = split_host(host)
        if name in self.hosts:
            return True
        # Bound to every interface: the address the client reached is this machine's, whatever it is
        # (an interface that came up after the start); its page's websocket is allowed from then on.
        if self.everywhere and local_address is not None and _same_address(name, local_address):
            self.hosts.add(name)
            if self.ws_origins is not None:
                self.ws_origins.update(self.websocket_origins())
            return True
        return False

    def websocket_origins(self) -> set[str]:
        """`host:port` entries for Bokeh's websocket origin check: the allowed names, never `*`."""
        out: set[str] = set()
        for name in self.hosts:
            host = f"[{name}]" if ":" in name else name
            out |= {f"{host}:{self.port}", f"{host}:80"}  # Bokeh reads an Origin without a port as :80
        return out | self.public_origins

    # -- Origin -------------------------------------------------------------------------------

    def allow_origin(self, origin: str) -> None:
        """Allow `origin` to read and write (the embedded server: the notebook page's own origin).

        Any scheme (a VS Code notebook is `vscode-webview://…`), but one exact origin: not `null`, not `*`.
        """
        origin = origin.strip().lower()
        scheme, sep, rest = origin.partition("://")
        if not sep or not scheme or not rest or any(c in rest for c in "/*@ ") or origin == "null":
            raise ValueError(f"{origin!r} is not a page origin")
        self.cors_origins.add(origin)

    def cors_origin(self, origin: str | None) -> str | None:
        """`origin` if it may read this server cross-origin (for `Access-Control-Allow-Origin`), else None."""
        if origin and origin.lower() in self.cors_origins:
            return origin
        return None

    def cross_origin_write(self, method: str, headers: httputil.HTTPHeaders, host: str) -> str | None:
        """Why a write from a browser must be refused (another site's page sent it), or None.

        A request carrying no `Origin` and no `Sec-Fetch-Site` (curl, `fotoflo sync`, scripts) passes.
        """
        if method.upper() not in WRITE_METHODS:
            return None
        return foreign_page(headers, host, self.cors_origins)

    def token_ok(self, authorization: str | None) -> bool:
        """With a token set: whether `authorization` is `Bearer TOKEN`; without one, always."""
        if self.token is None:
            return True
        scheme, _, value = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())


def bad_host_message(host: str | None) -> str:
    return (
        f"this server does not answer to the name {split_host(host or '')!r}: "
        "open it by its own address, or start it with --allowed-host NAME"
    )


def local_address(connection: object) -> str | None:
    """The address of this machine a request's connection reached (None if unknown)."""
    stream = getattr(connection, "stream", None)
    with contextlib.suppress(OSError, IndexError, AttributeError):
        return str(stream.socket.getsockname()[0]) if stream is not None and stream.socket else None
    return None


def foreign_page(headers: httputil.HTTPHeaders, host: str, allowed: Iterable[str] = ()) -> str | None:
    """Why a request was sent by a page of another origin than `host`'s (and not of `allowed`), or None.

    By `Origin` (`null`, from a sandboxed frame or a `data:` page, is nobody's own unless the browser
    says `Sec-Fetch-Site: same-origin`), else by `Sec-Fetch-Site`; a request with neither (curl,
    scripts) is not a page's.
    """
    origin = headers.get("Origin")
    site = headers.get("Sec-Fetch-Site")
    if origin is not None:
        if origin != "null" and urlsplit(origin).netloc.lower() == host.lower():
            return None
        if origin == "null" and site == "same-origin":
            return None  # our own page with `Referrer-Policy: no-referrer` (a sandboxed frame's is cross-site)
        if origin.lower() in allowed:
            return None
        return f"a page of {origin} may not send this here"
    if site is not None and site not in ("same-origin", "none"):
        return f"a {site} page may not send this here"
    return None


def _same_address(name: str, local_address: str) -> bool:
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(local_address.split("%", 1)[0])
    except ValueError:
        return False


class HostGuard(httputil.HTTPServerConnectionDelegate):
    """Wraps a tornado application: a request with a foreign `Host` gets `421` and reaches no handler."""

    def __init__(self, app: httputil.HTTPServerConnectionDelegate, boundary: Boundary) -> None:
        self.app = app
        self.boundary = boundary

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        local = local_address(server_conn)
        return _Guarded(self.app.start_request(server_conn, request_conn), request_conn, self.boundary, local)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _Guarded(httputil.HTTPMessageDelegate):
    def __init__(
        self,
        inner: httputil.HTTPMessageDelegate,
        conn: httputil.HTTPConnection,
        boundary: Boundary,
        local: str | None,
    ) -> None:
        self.inner = inner
        self.conn = conn
        self.boundary = boundary
        self.local = local
        self.passing = False

    def headers_received(
        self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> Awaitable[None] | None:
        host = headers.get("Host")
        if self.boundary.allows_host(host, self.local):
            self.passing = True
            return self.inner.headers_received(start_line, headers)
        assert isinstance(start_line, httputil.RequestStartLine)
        log.warning("refused %s %s: Host %r is not this server's", start_line.method, start_line.path.split("?")[0],
                    host)  # fmt: skip
        message = bad_host_message(host)
        if start_line.path.startswith("/api/"):
            body = json.dumps({"error": {"code": "bad_host", "message": message}}).encode()
            kind = "application/json; charset=utf-8"
        else:
            body = f"421 Misdirected Request: {message}\n".encode()
            kind = "text/plain; charset=utf-8"
        headers_out = httputil.HTTPHeaders(
            {"Content-Type": kind, "Content-Length": str(len(body)), "Connection": "close",
             "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
        )  # fmt: skip
        self.conn.write_headers(httputil.ResponseStartLine("HTTP/1.1", 421, "Misdirected Request"), headers_out, body)
        self.conn.finish()
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.passing:
            return self.inner.data_received(chunk)
        return None  # a refused request's body is dropped (tornado closes the connection after it)

    def finish(self) -> None:
        if self.passing:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if self.passing:
            self.inner.on_connection_close()


def guard(server: Any, boundary: Boundary) -> None:
    """Put `boundary` in front of a Bokeh server: its `Host` check on every request, its names for the websocket.

    Panel builds the tornado application and its HTTP server; nothing is served before the loop runs,
    so the request callback is swapped here. Bokeh's websocket origin list is set to the allowed names
    (with the port), never `*`, whatever address the server is bound to.
    """
    origins: set[str] = server._tornado.websocket_origins
    origins.clear()
    origins.update(boundary.websocket_origins())
    boundary.ws_origins = origins
    server._http.request_callback = HostGuard(server._tornado, boundary)
