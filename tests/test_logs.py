"""No secret in any log line: the redaction itself, and a real `fotoflo serve --auth`'s own output."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dashboard import logs
from dashboard.auth import Role, SQLiteAuthStore
from tests.support.api import upload
from tests.support.images import small_jpeg
from tests.support.servers import Server, running_server
from tests.support.waiting import wait_until

SHARE = "Zq3k9PZ0yUuM1y7rLw2Xn4c8hT5bA6dE"
TOKEN = "fft_9Hq2mV0yP4zR7sK1wL3xN6cB8dF5gJ2hA0uE9tY4iO7"


@pytest.mark.parametrize(
    ("line", "kept", "secret"),
    [
        (f"303 GET /s/{SHARE} (127.0.0.1) 3.1ms", "303 GET /s/… (127.0.0.1)", SHARE),
        (f"404 GET /s/{SHARE}/ (10.0.0.2)", "GET /s/…/ (10.0.0.2)", SHARE),
        (
            "200 GET /files/abc/original?exp=1767225600&sig=q9Z-x_1 (::1)",
            "original?exp=[redacted]&sig=[redacted]",
            "q9Z-x_1",
        ),
        (f"401 GET /api/projects/p/images?limit=5&token={TOKEN} (1.2.3.4)", "images?limit=5&token=[redacted]", TOKEN),
        (f"headers: {{'Authorization': 'Bearer {TOKEN}'}}", "'Authorization': '[redacted]'", TOKEN),
        (f"sent Authorization: Bearer {TOKEN}", "Authorization: [redacted]", TOKEN),
        (
            "Cookie: fotoflo_session=s3cr3t-Value_1; fotoflo_csrf=c5rf",
            "fotoflo_session=[redacted]; fotoflo_csrf=",
            "s3cr3t",
        ),
        (f"quoted {TOKEN} in a message", "quoted fft_[redacted] in a message", TOKEN),
        ("form: password=hunter2&next=/", "password=[redacted]&next=/", "hunter2"),
        # Plain lines (no secret): left alone, but for a share link's place ("/s/…", even of a project "s").
        ("SSE open default from 127.0.0.1 after #12", "SSE open default from 127.0.0.1 after #12", None),
        ("signed in with token 3fa9 (owner) from ::1", "signed in with token 3fa9 (owner) from ::1", None),
        ("200 GET /api/projects/s/images (127.0.0.1)", "200 GET /api/projects/s/… (127.0.0.1)", None),
        ("exported 3 files", "exported 3 files", None),
    ],
)
def test_redact_keeps_the_line_and_drops_the_secret(line: str, kept: str, secret: str | None) -> None:
    cleaned = logs.redact(line)
    if secret is None:
        assert cleaned == kept
    else:
        assert secret not in cleaned and kept in cleaned, cleaned


def test_the_filter_holds_on_every_handler_also_those_of_other_libraries() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    bokeh = logging.getLogger("bokeh.test-logs")  # a library logger with a handler of its own
    bokeh.addHandler(handler)
    bokeh.propagate = False
    try:
        logs.install()
        bokeh.warning("session from %s with %s", f"/s/{SHARE}", f"Bearer {TOKEN}")
        try:
            raise ValueError(f"cannot open /s/{SHARE}")
        except ValueError:
            bokeh.exception("failed")
    finally:
        bokeh.removeHandler(handler)
        bokeh.propagate = True
        for h in logging.getLogger().handlers:
            for f in [f for f in h.filters if isinstance(f, logs.RedactSecrets)]:
                h.removeFilter(f)
    written = stream.getvalue()
    assert "session from /s/… with Bearer [redacted]" in written and "ValueError: cannot open /s/…" in written
    assert SHARE not in written and TOKEN not in written


# -- a real server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    tmp = tmp_path_factory.mktemp("logged-server")
    store = SQLiteAuthStore(tmp / "data" / "auth.sqlite")
    _, owner = store.create_token(name="owner", role=Role.OWNER)
    _, share = store.create_share(project="default", role=Role.VIEWER)
    store.close()
    with running_server(tmp, extra_args=("--auth",)) as server:
        yield server, owner, share


def test_no_secret_reaches_the_server_log(logged_server: tuple[Server, str, str]) -> None:
    server, owner, share = logged_server
    secrets = [owner, share]
    with httpx.Client(timeout=15) as browser:
        assert browser.get(f"{server.url}/s/{share}").status_code == 303  # the share link, opened
        assert browser.get(f"{server.url}/s/{'N' * 32}").status_code == 404  # a guessed one
        secrets.append("N" * 32)
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {owner}"}) as owner_client:
        image = upload(owner_client, server, ("a.jpg", small_jpeg(1))).json()["images"][0]
    signed = image["url"]
    secrets.append(parse_qs(urlsplit(signed).query)["sig"][0])
    bad = "fft_" + "B" * 43
    secrets.append(bad)
    with httpx.Client(timeout=15) as client:
        assert client.get(server.url + signed).status_code == 200  # a signed file URL
        assert client.get(server.url + signed.replace("sig=", "sig=0")).status_code == 403  # a forged one
        assert client.get(server.api("/images"), headers={"Authorization": f"Bearer {bad}"}).status_code == 401
        assert client.get(server.api(f"/images?token={bad}")).status_code == 401  # a token where none belongs
    wait_until(lambda: "token=[redacted]" in server.log(), timeout_s=10)
    log = server.log()
    for secret in secrets:
        assert secret not in log, f"{secret} is in the log:\n{log}"
    # Still useful: who, what, which status; the secret's place is marked.
    assert "303 GET /s/… (127.0.0.1)" in log and "404 GET /s/… (127.0.0.1)" in log
    assert f"200 GET /files/{image['id']}/original?exp=[redacted]&sig=[redacted] (127.0.0.1)" in log
    assert "403 GET /files/" in log and "failed sign-in from 127.0.0.1: invalid_token" in log
