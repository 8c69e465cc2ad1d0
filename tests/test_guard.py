"""The server's boundary on real `fotoflo serve` processes: the `Host` check on every kind of endpoint (DNS
rebinding), cross-site writes in open mode, CORS only for `--cors-origin`, `/healthz` details, and the page's
websocket origins when bound to every interface."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.auth.access import SESSION_COOKIE
from dashboard.guard import Boundary, machine_names, split_host
from tests.support import ROOT
from tests.support.api import assert_json_error, checked_client, upload
from tests.support.images import small_jpeg
from tests.support.servers import Server, ServerFactory, running_server
from tests.support.waiting import wait_until

FOREIGN = "rebind.example"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An open server on loopback that also answers to `studio.local`, and lets one other site's pages in."""
    tmp = tmp_path_factory.mktemp("guarded")
    args = ("--allowed-host", "studio.local", "--cors-origin", "http://tools.example:8080")
    with running_server(tmp, extra_args=args) as server:
        yield server


def raw_status(port: int, request: str, address: str = "127.0.0.1") -> tuple[int, str]:
    """Send one raw HTTP/1.1 request (a websocket upgrade, which httpx does not make); its status and text."""
    with socket.create_connection((address, port), timeout=10) as conn:
        conn.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.decode("latin-1")
    return int(head.split(" ", 2)[1]), head


def upgrade(path: str, host: str, origin: str, cookie: str = "") -> str:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    )


def test_a_foreign_host_reaches_no_endpoint(guarded: Server) -> None:
    port = guarded.port
    with checked_client() as client:
        assert upload(client, guarded, ("kept.jpg", small_jpeg(1))).status_code == 201
        image = client.get(guarded.api("/images")).json()["images"][0]
        foreign = {"Host": f"{FOREIGN}:{port}"}
        endpoints = {
            "page": f"{guarded.url}/",
            "static": f"{guarded.url}/static/js/bokeh.min.js",
            "api": guarded.api("/images"),
            "file": guarded.url + image["thumbnail_url"],
            "health": f"{guarded.url}/healthz",
        }
        for name, url in endpoints.items():
            assert client.get(url).status_code == 200, name  # by its own name, each answers
            refused = client.get(url, headers=foreign)
            assert refused.status_code == 421, name
            assert image["id"] not in refused.text, name
        assert_json_error(client.get(guarded.api("/images"), headers=foreign), 421, "bad_host")
        with client.stream("GET", guarded.api("/events"), timeout=10) as stream:
            assert stream.status_code == 200  # the stream by its own name
        with client.stream("GET", guarded.api("/events"), headers=foreign, timeout=10) as stream:
            assert stream.status_code == 421
        assert "text/plain" in client.get(f"{guarded.url}/", headers=foreign).headers["content-type"]
        # The writes a rebinding page would send: nothing is uploaded, nothing deleted.
        sent = client.post(guarded.api("/upload"), files={"file": ("evil.jpg", small_jpeg(2))}, headers=foreign)
        assert sent.status_code == 421
        assert client.delete(guarded.api(f"/images/{image['id']}"), headers=foreign).status_code == 421
        # Its names: with or without the port, any case; an --allowed-host name.
        for host in (f"localhost:{port}", "127.0.0.1", f"LOCALHOST:{port}", f"[::1]:{port}", f"studio.local:{port}"):
            assert client.get(guarded.api("/images"), headers={"Host": host}).status_code == 200, host
        for host in (f"studio.local.{FOREIGN}:{port}", f"127.0.0.1.{FOREIGN}", f"localhost.{FOREIGN}:{port}", ""):
            assert client.get(guarded.api("/images"), headers={"Host": host}).status_code == 421, host
        after = client.get(guarded.api("/images")).json()["images"]
        assert [i["filename"] for i in after].count("evil.jpg") == 0 and image["id"] in {i["id"] for i in after}
    # The websocket upgrade of the page, too (Bokeh would check its Origin only).
    status, _ = raw_status(port, upgrade("/ws", f"{FOREIGN}:{port}", f"http://127.0.0.1:{port}"))
    assert status == 421
    assert "refused GET /api/projects/" in guarded.log() and FOREIGN in guarded.log()


def test_open_mode_refuses_other_sites_writes_and_keeps_scripts_working(guarded: Server) -> None:
    own = f"http://127.0.0.1:{guarded.port}"
    with checked_client() as client:
        before = len(client.get(guarded.api("/images")).json()["images"])
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": f"http://127.0.0.1:{guarded.port + 1}"},  # another loopback port is another origin
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            sent = client.post(guarded.api("/upload"), files={"file": ("x.jpg", small_jpeg(3))}, headers=headers)
            assert_json_error(sent, 403, "cross_origin")
        assert len(client.get(guarded.api("/images")).json()["images"]) == before, "nothing was uploaded"
        image = client.get(guarded.api("/images")).json()["images"][0] if before else None
        if image is None:
            assert upload(client, guarded, ("mine.jpg", small_jpeg(4))).status_code == 201
            image = client.get(guarded.api("/images")).json()["images"][0]
        rating = guarded.api(f"/images/{image['id']}/rating")
        assert_json_error(client.post(rating, json={"rating": 5}, headers={"Origin": "http://evil.example"}), 403,
                          "cross_origin")  # fmt: skip
        deleted = client.delete(guarded.api(f"/images/{image['id']}"), headers={"Origin": "http://evil.example"})
        assert_json_error(deleted, 403, "cross_origin")
        assert client.get(guarded.api(f"/images/{image['id']}")).status_code == 200
        # The page's own writes, a --cors-origin's, and scripts' (no Origin, no Sec-Fetch-Site) pass.
        assert client.post(rating, json={"rating": 1}, headers={"Origin": own}).status_code == 200
        assert client.post(rating, json={"rating": 2}, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        tools = {"Origin": "http://tools.example:8080"}
        assert client.post(rating, json={"rating": 3}, headers=tools).status_code == 200
        assert client.post(rating, json={"rating": 4}).status_code == 200
        # Reads are not writes: a foreign page may send them, it just cannot read the answer (no CORS).
        read = client.get(guarded.api("/images"), headers={"Origin": "http://evil.example"})
        assert read.status_code == 200 and "Access-Control-Allow-Origin" not in read.headers


def test_cors_only_for_the_named_origins(guarded: Server) -> None:
    with checked_client() as client:
        tools = client.get(guarded.api("/images"), headers={"Origin": "http://tools.example:8080"})
        assert tools.headers["Access-Control-Allow-Origin"] == "http://tools.example:8080"
        assert tools.headers["Vary"] == "Origin"
        for origin in ("http://evil.example", "http://tools.example:8081", "https://tools.example:8080", "null"):
            response = client.get(guarded.api("/images"), headers={"Origin": origin})
            assert "Access-Control-Allow-Origin" not in response.headers, origin
            preflight = client.options(guarded.api("/images"), headers={"Origin": origin})
            assert preflight.status_code == 405 and "Access-Control-Allow-Origin" not in preflight.headers
        preflight = client.options(
            guarded.api("/collections"),
            headers={"Origin": "http://tools.example:8080", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://tools.example:8080"
        # Nowhere a wildcard: not on errors, files or the stream either.
        for url in (guarded.api("/nope"), f"{guarded.url}/healthz", f"{guarded.url}/files/x/thumb"):
            response = client.get(url, headers={"Origin": "http://evil.example"})
            assert "Access-Control-Allow-Origin" not in response.headers, url


def test_healthz_details_on_loopback_when_open(guarded: Server) -> None:
    with checked_client() as client:
        local = client.get(f"{guarded.url}/healthz").json()
    assert local["status"] == "ok" and local["watcher"] == str(guarded.watch) and local["store"] == "ok"


def _reachable_non_loopback(name: str) -> bool:
    try:
        return not socket.inet_aton(name).startswith(b"\x7f")
    except OSError:
        return False


@pytest.fixture(scope="module")
def everywhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server bound to 0.0.0.0 (so with sign-in), for its names and the page's websocket origins."""
    tmp = tmp_path_factory.mktemp("everywhere")
    with running_server(tmp, extra_args=("--address", "0.0.0.0")) as server:
        yield server


def test_bound_everywhere_it_answers_its_own_names_and_addresses_only(everywhere: Server) -> None:
    port = everywhere.port
    lan = [n for n in machine_names() if _reachable_non_loopback(n)]
    with checked_client() as client:
        health = f"{everywhere.url}/healthz"
        assert client.get(health, headers={"Host": f"{socket.gethostname()}:{port}"}).status_code == 200
        assert client.get(health, headers={"Host": f"{FOREIGN}:{port}"}).status_code == 421
        for path in ("/login", "/s/" + "A" * 32, "/"):  # the sign-in pages and the page, too
            assert client.get(everywhere.url + path, headers={"Host": FOREIGN}).status_code == 421, path
        for address in lan:  # reached at the machine's own address, by that address
            assert client.get(f"http://{address}:{port}/healthz").status_code == 200, address
            assert client.get(f"http://{address}:{port}/healthz", headers={"Host": FOREIGN}).status_code == 421
        # With sign-in on, /healthz tells anyone but an owner its status only (no paths, no store errors).
        assert client.get(health).json() == {"status": "ok"}
    token = wait_until(lambda: [w for w in everywhere.log().split() if w.startswith("fft_")], timeout_s=10)
    assert isinstance(token, list)
    with checked_client(headers={"Authorization": f"Bearer {token[0]}"}) as owner:
        details = owner.get(f"{everywhere.url}/healthz").json()
        assert details["watcher"] == str(everywhere.watch) and details["store"] == "ok"
    with checked_client(headers={"Authorization": "Bearer fft_" + "A" * 43}) as forged:
        assert forged.get(f"{everywhere.url}/healthz").json() == {"status": "ok"}


def test_bound_everywhere_the_page_websocket_accepts_only_its_own_origins(everywhere: Server) -> None:
    port = everywhere.port
    host = f"127.0.0.1:{port}"
    token = wait_until(lambda: [w for w in everywhere.log().split() if w.startswith("fft_")], timeout_s=10)
    assert isinstance(token, list)
    with checked_client() as client:  # a signed-in browser: the page's websocket needs a session
        assert client.post(f"{everywhere.url}/login", data={"token": token[0]}).status_code == 303
        cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
    refused, head = raw_status(port, upgrade("/ws", host, f"http://evil.example:{port}", cookie))
    assert refused == 403, head  # was accepted (101) with websocket_origin='*'
    assert "Refusing websocket connection from Origin 'http://evil.example" in everywhere.log()
    accepted, head = raw_status(port, upgrade("/ws", host, f"http://127.0.0.1:{port}", cookie))
    assert accepted == 101, head
    for address in (n for n in machine_names() if _reachable_non_loopback(n)):
        at = f"{address}:{port}"
        status, head = raw_status(port, upgrade("/ws", at, f"http://{at}", cookie), address=address)
        assert status == 101, head


def test_boundary_names_and_origins() -> None:
    assert split_host("[::1]:5006") == "::1" and split_host("Studio.Local.:80") == "studio.local"
    boundary = Boundary("127.0.0.1", 5006, allowed_hosts=["studio.local"], cors_origins=["https://a.example"])
    assert boundary.allows_host("studio.local:5006") and not boundary.allows_host("studio.local.evil")
    assert "*" not in "".join(boundary.websocket_origins())
    assert "[::1]:5006" in boundary.websocket_origins()
    with pytest.raises(ValueError, match="not an origin"):
        Boundary("127.0.0.1", 5006, cors_origins=["*"])
    with pytest.raises(ValueError, match="not an origin"):
        Boundary("127.0.0.1", 5006, cors_origins=["https://a.example/path"])
    with pytest.raises(ValueError, match="not a host name"):
        Boundary("127.0.0.1", 5006, allowed_hosts=["http://studio.local"])


def test_an_allowed_host_with_a_port_allows_pages_from_that_port_only() -> None:
    """Behind a proxy on another port (`photos.example.com:8443`), the page's websocket comes from there."""
    boundary = Boundary("127.0.0.1", 5006, allowed_hosts=["Photos.Example.com:8443", "[fd00::5]:9443"])
    assert boundary.allows_host("photos.example.com:8443") and boundary.allows_host("[fd00::5]:9443")
    origins = boundary.websocket_origins()
    assert {"photos.example.com:8443", "photos.example.com:5006", "[fd00::5]:9443"} <= origins
    assert "photos.example.com:8444" not in origins and "*" not in "".join(origins)
    for bad in ("photos.example.com:x", "photos.example.com:70000", "[fd00::5]:", "a:b:c/d"):
        with pytest.raises(ValueError, match="not a host name"):
            Boundary("127.0.0.1", 5006, allowed_hosts=[bad])


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (("--cors-origin", "*"), {}, "--cors-origin"),
        ((), {"FOTOFLO_CORS_ORIGINS": "http://ok.example, ftp://x"}, "--cors-origin"),
        (("--allowed-host", "studio.local/x"), {}, "--allowed-host"),
    ],
)
def test_bad_boundary_settings_stop_the_server_with_one_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], names: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "serve", "--data", str(tmp_path / "d"), "--no-watch", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("fotoflo serve: ") and names in done.stderr and "Traceback" not in done.stderr


def test_env_lists_are_read(server_factory: ServerFactory) -> None:
    server = server_factory(env={"FOTOFLO_ALLOWED_HOSTS": "a.example, b.example", "FOTOFLO_CORS_ORIGINS": ""})
    with checked_client() as client:
        for host in ("a.example", "b.example:80"):
            assert client.get(f"{server.url}/healthz", headers={"Host": host}).status_code == 200
        assert client.get(f"{server.url}/healthz", headers={"Host": "c.example"}).status_code == 421
    assert httpx.get(f"{server.url}/healthz").status_code == 200
