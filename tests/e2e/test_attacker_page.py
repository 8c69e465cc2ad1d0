"""A page is the attacker: another loopback port's page tries cross-site writes, and a rebinding name tries
to be same-origin with Fotoflo. Nothing may be uploaded, deleted or read; checked through the real API."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.e2e.conftest import photo_jpeg
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import Server, ServerFactory
from tests.support.waiting import wait_until

ATTACK = """<!doctype html><html><body>
<form id="form" method="post" enctype="multipart/form-data" target="sink"
  action="{fotoflo}/api/projects/default/upload"><input id="file" type="file" name="file"></form>
<iframe name="sink" id="sink"></iframe>
<script>
const fotoflo = {fotoflo_json};
const bytes = Uint8Array.from(atob({jpeg_b64}), (c) => c.charCodeAt(0));
const out = (window.results = {{}});
async function attack() {{
  // (a) a "simple" cross-site multipart upload, its answer unreadable (no-cors): it only has to land.
  const form = new FormData();
  form.append("file", new Blob([bytes], {{ type: "image/jpeg" }}), "no-cors.jpg");
  try {{
    await fetch(`${{fotoflo}}/api/projects/default/upload`, {{ method: "POST", mode: "no-cors", body: form }});
    out.noCors = "sent";
  }} catch (err) {{ out.noCors = `error ${{err}}`; }}
  // Reading the library cross-origin, and a DELETE (which needs CORS).
  try {{
    const resp = await fetch(`${{fotoflo}}/api/projects/default/images`);
    out.read = `read ${{resp.status}}`;
  }} catch (err) {{ out.read = "blocked"; }}
  try {{
    const resp = await fetch(`${{fotoflo}}/api/projects/default/images/{image_id}`, {{ method: "DELETE" }});
    out.delete = `deleted ${{resp.status}}`;
  }} catch (err) {{ out.delete = "blocked"; }}
  // (b) a form POST of a file into a hidden frame.
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "form-post.jpg", {{ type: "image/jpeg" }}));
  document.getElementById("file").files = transfer.files;
  await new Promise((resolve) => {{
    document.getElementById("sink").addEventListener("load", resolve, {{ once: true }});
    document.getElementById("form").submit();
  }});
  out.form = "submitted";
  window.done = true;
}}
attack();
</script></body></html>"""


class _Attacker(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker_site() -> Iterator[tuple[str, type[_Attacker]]]:
    """A web site of its own on another loopback port (another origin, as any site the user visits)."""
    handler = type("Attacker", (_Attacker,), {})
    site = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=site.serve_forever, name="attacker-site")
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}", handler
    finally:
        site.shutdown()
        site.server_close()
        thread.join()


def _images(server: Server) -> list[dict[str, object]]:
    return list(httpx.get(server.api("/images"), timeout=10).json()["images"])


@pytest.fixture
def fotoflo(server_factory: ServerFactory) -> Server:
    server = server_factory()
    sent = httpx.post(server.api("/upload"), files={"file": ("mine.jpg", photo_jpeg(1, (320, 240)), "image/jpeg")})
    assert sent.status_code == 201
    return server


def test_another_site_s_page_cannot_upload_delete_or_read(
    fotoflo: Server, attacker_site: tuple[str, type[_Attacker]], browser: object
) -> None:
    url, handler = attacker_site
    (image,) = _images(fotoflo)
    handler.page = ATTACK.format(
        fotoflo=fotoflo.url,
        fotoflo_json=json.dumps(fotoflo.url),
        jpeg_b64=json.dumps(base64.b64encode(photo_jpeg(2, (320, 240))).decode()),
        image_id=image["id"],
    ).encode()
    context = browser.new_context()  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("window.done === true", timeout=30_000)
        results = page.evaluate("window.results")
    finally:
        context.close()
    assert results["read"] == "blocked" and results["delete"] == "blocked", results
    assert results["form"] == "submitted" and results["noCors"] == "sent", results  # the browser did send both
    # Both uploads reached the server and were refused there: nothing was added, nothing deleted.
    wait_until(lambda: fotoflo.log().count("403 cross_origin") >= 2, timeout_s=10)
    assert [i["id"] for i in _images(fotoflo)] == [image["id"]]


def test_a_rebinding_name_reaches_nothing(fotoflo: Server, browser: object) -> None:
    """`rebind.example` resolves to 127.0.0.1 (as an attacker's DNS would, after its page loaded)."""
    (image,) = _images(fotoflo)
    rebinding = browser.browser_type.launch(  # type: ignore[attr-defined]
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.example 127.0.0.1"]
    )
    try:
        page = rebinding.new_page()
        response = page.goto(f"http://rebind.example:{fotoflo.port}/")
        assert response is not None and response.status == 421
        assert "does not answer to the name 'rebind.example'" in page.content()
        assert page.locator("[data-testid=live-indicator]").count() == 0, "no gallery page"
        # A script of that origin is same-origin with the name: everything it asks is refused.
        answers = page.evaluate(
            """async (id) => {
              const out = {};
              const ask = async (name, path, init) => {
                const resp = await fetch(path, init);
                out[name] = [resp.status, await resp.text()];
              };
              await ask("list", "/api/projects/default/images");
              await ask("events", "/api/projects/default/events", { headers: { Accept: "text/event-stream" } });
              await ask("delete", `/api/projects/default/images/${id}`, { method: "DELETE" });
              const form = new FormData();
              form.append("file", new Blob(["x"], { type: "image/jpeg" }), "rebound.jpg");
              await ask("upload", "/api/projects/default/upload", { method: "POST", body: form });
              await ask("health", "/healthz");
              return out;
            }""",
            image["id"],
        )
    finally:
        rebinding.close()
    for name, (status, text) in answers.items():
        assert status == 421, (name, status, text)
        assert image["id"] not in text and "mine.jpg" not in text, name
    assert json.loads(answers["list"][1])["error"]["code"] == "bad_host"
    assert [i["id"] for i in _images(fotoflo)] == [image["id"]], "nothing uploaded, nothing deleted"
