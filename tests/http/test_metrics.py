"""`/metrics`: what an operator's Prometheus reads from one server, and who may read it."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from dashboard.auth.roles import Role
from dashboard.auth.store import SQLiteAuthStore
from dashboard.store.sqlite import MEMORY_CAP_BYTES
from tests.e2e.helpers import drop_file
from tests.support.api import assert_json_error, checked_client, upload
from tests.support.images import small_jpeg
from tests.support.servers import Server, ServerFactory
from tests.support.sse import sse
from tests.support.waiting import wait_until


def scrape(client: httpx.Client, server: Server) -> dict[str, float]:
    """Every sample of `/metrics` by name and labels, e.g. `fotoflo_ingest_refusals_total{reason=corrupt}`."""
    response = client.get(f"{server.url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")  # the exposition format
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "le")
            if "le" in s.labels:
                labels = f"{labels},le={s.labels['le']}".lstrip(",")
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples


def test_an_operator_reads_what_the_server_did(server: Server) -> None:
    with checked_client() as client:
        before = scrape(client, server)
        assert before["fotoflo_images_ingested_total"] == 0 and before["fotoflo_bus_connected"] == 1
        with sse(server.api("/events")) as stream:
            assert scrape(client, server)["fotoflo_sse_streams_open"] == 1
            for seed in (1, 2):
                assert upload(client, server, (f"img-{seed}.jpg", small_jpeg(seed))).status_code == 201
            refused = upload(client, server, ("broken.jpg", b"\xff\xd8\xff" + b"\0" * 64))
            assert refused.status_code in (400, 415, 422), refused.text
            stream.take(2)
            seen = wait_until(lambda: (m := scrape(client, server))["fotoflo_events_delivered_total"] >= 2 and m)
        assert isinstance(seen, dict)
        assert seen["fotoflo_images_ingested_total"] == 2
        assert seen["fotoflo_ingest_seconds_count"] == 2 and seen["fotoflo_ingest_seconds_sum"] > 0
        [error] = refused.json()["errors"]
        code = error["code"]
        assert seen[f"fotoflo_ingest_refusals_total{{reason={code}}}"] == 1
        assert seen["fotoflo_feed_lag_seconds_count"] >= 1  # a batch delivered to the stream, its lag observed
        assert seen["fotoflo_feed_subscribers"] == 1
        # The store's page caches and statements, bounded by its cap (the server's SQLite is linked dynamically).
        assert 0 < seen["fotoflo_sqlite_memory_bytes"] <= MEMORY_CAP_BYTES
        wait_until(lambda: scrape(client, server)["fotoflo_sse_streams_open"] == 0)


def test_a_file_refused_in_the_hot_folder_counts_once(server: Server) -> None:
    drop_file(server.watch, "junk.jpg", b"this is no photograph" * 10)
    drop_file(server.watch, "fine.jpg", small_jpeg(3))
    with checked_client() as client:
        wait_until(lambda: scrape(client, server)["fotoflo_images_ingested_total"] == 1, timeout_s=15)
        wait_until(lambda: "junk.jpg: not an image" in server.log(), timeout_s=15)
        refusals = {k: v for k, v in scrape(client, server).items() if k.startswith("fotoflo_ingest_refusals_total")}
    assert refusals == {"fotoflo_ingest_refusals_total{reason=not_an_image}": 1.0}


def test_only_operators_read_metrics(server_factory: ServerFactory, tmp_path: Path) -> None:
    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    owner = store.create_token(name="owner", role=Role.OWNER)[1]
    project_owner = store.create_token(name="one project", role=Role.OWNER, project="default")[1]
    viewer = store.create_token(name="viewer", role=Role.VIEWER)[1]
    store.close()
    server = server_factory(extra_args=("--auth",))
    with checked_client() as client:
        assert_json_error(client.get(f"{server.url}/metrics"), 401, "unauthenticated")
        wrong = client.get(f"{server.url}/metrics", headers={"Authorization": "Bearer fft_wrong"})
        assert_json_error(wrong, 401, "invalid_token")
        for token in (viewer, project_owner):
            response = client.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"})
            assert_json_error(response, 403, "forbidden")
        assert "fotoflo_images_ingested_total" not in response.text
        response = client.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {owner}"})
        assert response.status_code == 200 and "fotoflo_images_ingested_total 0.0" in response.text
        assert "access-control-allow-origin" not in response.headers
