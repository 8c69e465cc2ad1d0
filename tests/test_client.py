"""`dashboard.client`: the one HTTP client of the API: quoted project URLs, errors read one way, light imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dashboard.client import ApiClient, ApiError, Unreachable
from dashboard.samples import photo_jpeg
from tests.support import ROOT
from tests.support.servers import Server, free_port

HEAVY = ("PIL", "rawpy", "pillow_heif", "panel", "bokeh")


def test_it_loads_no_decoder_and_no_panel() -> None:
    # The sync client talks through it: a laptop that only syncs must not load the imaging stack.
    code = f"import sys, dashboard.client; print([m for m in {HEAVY!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


def test_answers_and_errors_of_a_real_server(server: Server) -> None:
    api = ApiClient(server.url, server.project)
    missing = ApiClient(server.url, "no such/project")
    try:
        uploaded = api.request("POST", "/upload", files={"file": ("a.jpg", photo_jpeg(1, (320, 240)), "image/jpeg")})
        assert uploaded.status_code == 201, uploaded.text
        assert [image["filename"] for image in api.get("/images")["images"]] == ["a.jpg"]

        with pytest.raises(ApiError) as refused:
            api.send("POST", "/collections", {"name": "x", "image_ids": "not a list"})
        assert (refused.value.status, refused.value.code) == (400, "bad_argument")

        with pytest.raises(ApiError) as unknown:
            missing.get("/images")
        error = unknown.value
        assert (error.status, error.code) == (404, "unknown_project")
        assert error.path == "/api/projects/no%20such%2Fproject/images"
        assert "'no such/project'" in error.reason, "the server saw the whole name"
    finally:
        api.close()
        missing.close()


def test_a_server_that_does_not_answer_is_unreachable() -> None:
    api = ApiClient(f"http://127.0.0.1:{free_port()}", "p", timeout_s=5)
    try:
        with pytest.raises(Unreachable, match="connection refused"):
            api.get("/images")
    finally:
        api.close()
