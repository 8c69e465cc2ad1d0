"""What a client can make a real `fotoflo serve` hold: bodies it never asked for, time, memory, disk.

Raw sockets where "no body byte was read" must be shown: the request's headers announce a body that is
never sent, and the answer must come all the same.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from dashboard.http.base import IDLE_CONNECTION_TIMEOUT_S
from tests.support.api import upload
from tests.support.images import small_jpeg
from tests.support.servers import Server
from tests.support.waiting import wait_until

MAX_BYTES = 1_000_000
UPLOAD_CAP = 4 * MAX_BYTES + 1024 * 1024
BUDGET = 3_000_000
SERVER_ARGS = ("--max-bytes", str(MAX_BYTES), "--upload-buffer-bytes", str(BUDGET))  # conftest's shared_server


@pytest.fixture
def server(shared_project: Server) -> Server:
    """A project of this test's own on the module's server; it must log no traceback."""
    return shared_project


# -- raw HTTP -------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    head: str  # every status line and header block received, 1xx included

    def json(self) -> dict:
        return dict(json.loads(self.body))


def connect(server: Server, timeout_s: float = 20) -> socket.socket:
    port = int(urlsplit(server.url).port or 80)
    return socket.create_connection(("127.0.0.1", port), timeout=timeout_s)


def send_head(sock: socket.socket, method: str, url: str, headers: dict[str, str]) -> None:
    """The request line and headers only: what the body would be is announced, not sent."""
    target = urlsplit(url)
    path = target.path + (f"?{target.query}" if target.query else "")
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def read_answer(sock: socket.socket, *, head_only: bool = False) -> Answer:
    """The final answer on `sock` (after any `100 Continue`), read to its Content-Length (`head_only`: for a HEAD)."""
    received = b""
    heads = []
    while True:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without answering: {received!r}"
            received += chunk
        head, _, received = received.partition(b"\r\n\r\n")
        heads.append(head.decode("latin-1"))
        if not head.startswith(b"HTTP/1.1 1"):
            break
    lines = heads[-1].split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(received) < length:
        chunk = sock.recv(65536)
        assert chunk, "the answer was cut short"
        received += chunk
    return Answer(int(lines[0].split()[1]), headers, received[:length], "\r\n\r\n".join(heads))


def multipart(*files: tuple[str, bytes], boundary: str = "limits-boundary") -> tuple[bytes, str]:
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def noisy_jpeg(width: int = 600, height: int = 400) -> bytes:
    """A JPEG of noise: large for its size in pixels (~500 KB here), so it arrives in many chunks."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def upload_files(server: Server) -> list[str]:
    spool = server.data / "tmp"
    return sorted(p.name for p in spool.glob("upload-*")) if spool.exists() else []


# -- bodies before anything else ------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "GET", "PATCH", "DELETE", "HEAD"])
def test_a_method_upload_does_not_have_is_405_before_any_body_byte(server: Server, method: str) -> None:
    # Under the upload's own cap (so not a 413), far over any other: the server must not wait for it.
    with connect(server) as sock:
        send_head(sock, method, server.api("/upload"), {"Content-Length": str(UPLOAD_CAP - 1),
                                                        "Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
        answer = read_answer(sock, head_only=method == "HEAD")
    assert answer.status == 405 and answer.headers["connection"] == "close"
    assert answer.headers["allow"] == "POST, OPTIONS"
    if method != "HEAD":
        assert answer.json()["error"]["code"] == "method_not_allowed"
    with connect(server) as sock:  # a small body, announced and never sent, the same
        send_head(sock, "PUT", server.api("/images"), {"Content-Length": "10", "Content-Type": "application/json"})
        small = read_answer(sock)
    assert small.status == 405 and small.json()["error"]["code"] == "method_not_allowed"


def test_the_http_server_s_own_body_cap_is_small(server: Server) -> None:
    # Outside the API (the Panel page here) tornado's cap is 2 MiB now, not the upload's: only an
    # authorized upload raises it, for its own request.
    with connect(server) as sock:
        send_head(sock, "POST", server.url + "/", {"Content-Length": str(3 * 1024**2)})
        answer = read_answer(sock)
    assert answer.status == 400


# -- uploads go to temp files, within a budget ----------------------------------------------


def test_an_upload_is_streamed_to_a_private_temp_file_and_removed(server: Server) -> None:
    image = noisy_jpeg()
    body, content_type = multipart(("noise.jpg", image))
    half = len(body) // 2
    with connect(server) as sock:
        send_head(sock, "POST", server.api("/upload"), {"Content-Length": str(len(body)), "Content-Type": content_type})
        sock.sendall(body[:half])
        # Half the body sent: the file part is on disk already, not waiting in memory for the rest.
        spool = server.data / "tmp"
        wait_until(lambda: upload_files(server), timeout_s=10)
        (name,) = upload_files(server)
        part = spool / name
        wait_until(lambda: part.stat().st_size >= half - 1024, timeout_s=10)
        assert stat.S_IMODE(part.stat().st_mode) == 0o600
        assert stat.S_IMODE(spool.stat().st_mode) == 0o700
        sock.sendall(body[half:])
        answer = read_answer(sock)
    assert answer.status == 201, answer.body
    stored = answer.json()["images"][0]
    assert stored["filename"] == "noise.jpg" and stored["size_bytes"] == len(image)
    assert httpx.get(server.url + stored["url"], timeout=10).content == image
    assert upload_files(server) == []


def test_temp_files_of_refused_and_abandoned_uploads_are_removed(server: Server) -> None:
    # Refused: a file over --max-bytes (cut there, never ingested), and a form that never ends.
    big = os.urandom(MAX_BYTES + 1000)
    with httpx.Client(timeout=20) as client:
        refused = upload(client, server, ("big.jpg", big), ("small.jpg", small_jpeg(1)))
        assert refused.status_code == 201, refused.text
        assert [e["code"] for e in refused.json()["errors"]] == ["too_large"]
        body, content_type = multipart(("open.jpg", small_jpeg(2)))
        unfinished = client.post(server.api("/upload"), content=body[: -len(b"--\r\n")],
                                 headers={"Content-Type": content_type})  # fmt: skip
        assert unfinished.status_code == 400 and unfinished.json()["error"]["code"] == "bad_multipart"
    assert upload_files(server) == []
    # Abandoned: the client goes away in the middle of its body.
    body, content_type = multipart(("gone.jpg", noisy_jpeg()))
    with connect(server) as sock:
        send_head(sock, "POST", server.api("/upload"), {"Content-Length": str(len(body)), "Content-Type": content_type})
        sock.sendall(body[: len(body) // 2])
        wait_until(lambda: upload_files(server), timeout_s=10)
    wait_until(lambda: upload_files(server) == [], timeout_s=10)


def test_uploads_in_flight_share_one_budget_and_over_it_are_503_unread(server: Server) -> None:
    # Bigger than the whole budget (though under the body cap): it could never fit, so not a 503.
    with connect(server) as sock:
        send_head(sock, "POST", server.api("/upload"),
                  {"Content-Length": str(BUDGET + 1), "Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
        never = read_answer(sock)
    assert never.status == 413 and "--upload-buffer-bytes" in never.json()["error"]["message"]
    held = BUDGET - 500_000  # one upload holding most of the budget, its body still coming
    with connect(server) as holder:
        send_head(holder, "POST", server.api("/upload"),
                  {"Content-Length": str(held), "Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
        holder.sendall(b'--x\r\nContent-Disposition: form-data; name="file"; filename="h.jpg"\r\n\r\n' + b"h" * 1000)
        wait_until(lambda: upload_files(server), timeout_s=10)  # its body is being read: its share is taken
        with httpx.Client(timeout=20) as client:
            # A small upload still fits beside it...
            wait_until(lambda: upload(client, server, ("fits.jpg", small_jpeg(3))).status_code == 201, timeout_s=10)
            # ... one that would pass the budget is refused before its body is read.
            with connect(server) as sock:
                send_head(sock, "POST", server.api("/upload"),
                          {"Content-Length": "1000000", "Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
                busy = read_answer(sock)
            assert busy.status == 503 and busy.json()["error"]["code"] == "busy"
            assert int(busy.headers["retry-after"]) >= 1 and busy.headers["connection"] == "close"
            # Chunked, its size unknown: refused as soon as its bytes pass what is left of the budget.
            with connect(server) as sock:
                chunked_head = {"Transfer-Encoding": "chunked", "Content-Type": "multipart/form-data; boundary=x"}
                send_head(sock, "POST", server.api("/upload"), chunked_head)
                piece = b"c" * 65536
                sock.sendall(b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(8)))  # 512 KiB > 500 KB
                chunked = read_answer(sock)
            assert chunked.status == 503 and chunked.json()["error"]["code"] == "busy"
    # The holder went away: its share of the budget is back, and the same upload goes through.
    images = [noisy_jpeg(500, 300), noisy_jpeg(500, 300)]
    with httpx.Client(timeout=20) as client:
        wait_until(lambda: upload(client, server, *[(f"n{i}.jpg", d) for i, d in enumerate(images)]).status_code
                   == 201, timeout_s=10)  # fmt: skip


# -- slow clients ---------------------------------------------------------------------------


def test_idle_connections_and_bodies_that_never_come_are_closed(server: Server) -> None:
    """Slowloris: a connection that sends nothing, or announces a body it never sends, is not kept."""
    idle = connect(server, timeout_s=3 * IDLE_CONNECTION_TIMEOUT_S)
    stalled = connect(server, timeout_s=3 * IDLE_CONNECTION_TIMEOUT_S)
    try:
        send_head(stalled, "POST", server.api(f"/collections?x={uuid.uuid4().hex}"),
                  {"Content-Length": "100", "Content-Type": "application/json"})  # fmt: skip
        stalled.sendall(b'{"name":')
        # Each is closed by the server (recv sees the end, or the socket times out and the test fails).
        assert idle.recv(1) == b""
        assert stalled.recv(65536) == b""
    finally:
        idle.close()
        stalled.close()
