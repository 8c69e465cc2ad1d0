"""The `fotoflo` command line: `ingest` as a real subprocess, help, and how settings are resolved."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from dashboard.cli import main
from dashboard.config import ENV, Settings
from dashboard.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent


def fotoflo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m dashboard.cli ARGS` with no FOTOFLO_* variables from the outer environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOTOFLO_")}
    return subprocess.run(
        [sys.executable, "-m", "dashboard.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**clean, "COLUMNS": "200", **(env or {})},
    )


# -- fotoflo ingest -------------------------------------------------------------------------


def test_ingest_imports_the_good_files_and_names_the_bad_one(tmp_path: Path, make_jpeg) -> None:
    shoot = tmp_path / "shoot"
    (shoot / "day2").mkdir(parents=True)
    (shoot / "IMG_0001.jpg").write_bytes(make_jpeg(seed=1, make="Canon", taken="2025:06:14 15:20:01"))
    (shoot / "IMG_0002.jpg").write_bytes(make_jpeg(seed=2))
    (shoot / "day2" / "IMG_0003.jpg").write_bytes(make_jpeg(seed=3, color=(20, 40, 200)))
    (shoot / "broken.jpg").write_bytes(b"this is a text file with a .jpg name")
    # A shoot folder also holds sidecars and app caches: passed over, not refused.
    (shoot / "IMG_0001.xmp").write_text("<x:xmpmeta/>")
    (shoot / ".cache").mkdir()
    (shoot / ".cache" / "IMG_0009.jpg").write_bytes(make_jpeg(seed=9))
    data = tmp_path / "data"

    first = fotoflo("ingest", str(shoot), "--data", str(data), "--project", "wedding")

    assert first.returncode == 1, first.stderr
    assert "3 imported, 0 already there, 1 refused" in first.stdout
    assert "project 'wedding'" in first.stdout
    assert "refused broken.jpg: not an image" in first.stderr
    store = SQLiteStore(data / "fotoflo.sqlite")
    try:
        names = sorted(image.filename for image in store.list_images("wedding"))
        assert names == ["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"]
        assert store.last_seq("wedding") == 3
    finally:
        store.close()

    again = fotoflo("ingest", str(shoot), "--data", str(data), "--project", "wedding")

    assert again.returncode == 1, again.stderr
    assert "0 imported, 3 already there, 1 refused" in again.stdout
    assert "refused broken.jpg" in again.stderr

    (shoot / "broken.jpg").unlink()
    clean = fotoflo("ingest", str(shoot), "--data", str(data), "--project", "wedding")

    assert clean.returncode == 0, clean.stderr
    assert "0 imported, 3 already there, 0 refused" in clean.stdout


def test_ingest_reads_data_and_project_from_the_environment(tmp_path: Path, make_jpeg) -> None:
    photo = tmp_path / "one.jpg"
    photo.write_bytes(make_jpeg(seed=7))
    data = tmp_path / "env-data"

    result = fotoflo("ingest", str(photo), env={"FOTOFLO_DATA": str(data), "FOTOFLO_PROJECT": "studio"})

    assert result.returncode == 0, result.stderr
    assert "1 imported" in result.stdout and "project 'studio'" in result.stdout
    assert (data / "fotoflo.sqlite").is_file()


# -- help -----------------------------------------------------------------------------------


def test_help_lists_the_subcommands() -> None:
    result = fotoflo("--help")
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "ingest" in result.stdout and "--log-level" in result.stdout


def test_serve_help_names_every_option_with_its_env_var() -> None:
    result = fotoflo("serve", "--help")
    assert result.returncode == 0, result.stderr
    repeatable = {"allowed_hosts": "--allowed-host", "cors_origins": "--cors-origin"}  # one value per option
    for name, (var, _) in ENV.items():
        assert repeatable.get(name, "--" + name.replace("_", "-")) in result.stdout
        assert var in result.stdout
    assert "--no-watch" in result.stdout


def test_ingest_help() -> None:
    result = fotoflo("ingest", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--data", "--project", "--workers", "FOTOFLO_DATA", "FOTOFLO_PROJECT"):
        assert option in result.stdout


def test_a_subcommand_is_required() -> None:
    result = fotoflo()
    assert result.returncode == 2
    assert "serve" in result.stderr


def test_the_console_script_is_fotoflo() -> None:
    (script,) = entry_points(group="console_scripts", name="fotoflo")
    assert script.value == "dashboard.cli:main"


# -- settings -------------------------------------------------------------------------------


def test_settings_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = Settings.from_env({})
    assert settings == Settings(data=tmp_path / "fotoflo")
    assert (settings.watch, settings.project, settings.port, settings.address) == (None, "default", 5006, "127.0.0.1")
    assert (settings.rescan_s, settings.heartbeat_s, settings.wall, settings.secret) == (60.0, 15.0, False, None)
    assert (settings.db, settings.bus) == (None, "local")  # the embedded default: SQLite, in-process


def test_settings_read_every_fotoflo_env_var(tmp_path: Path) -> None:
    environ = {
        "FOTOFLO_DATA": str(tmp_path / "data"),
        "FOTOFLO_WATCH": str(tmp_path / "hot"),
        "FOTOFLO_PROJECT": "wedding",
        "FOTOFLO_PORT": "7001",
        "FOTOFLO_ADDRESS": "0.0.0.0",
        "FOTOFLO_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret",
        "FOTOFLO_MAX_BYTES": "1000000",
        "FOTOFLO_MAX_PIXELS": "4000000",
        "FOTOFLO_DECODE_TIMEOUT_S": "5",
        "FOTOFLO_RESCAN_S": "2.5",
        "FOTOFLO_HEARTBEAT_S": "3",
        "FOTOFLO_WALL": "yes",
        "FOTOFLO_DB": "postgresql://fotoflo@db.studio:5432/fotoflo",
        "FOTOFLO_BUS": "redis://cache.studio:6379/0",
        "FOTOFLO_BLOBS": "s3://photos/studio",
        "SUPABASE_URL": "https://ref.supabase.co",
        "SUPABASE_KEY": "service-role-key",
        "FOTOFLO_AUTH": "on",
        "FOTOFLO_MAX_FILES": "7",
        "FOTOFLO_UPLOAD_RATE": "60",
        "FOTOFLO_LOGIN_FAILURES": "5",
        "FOTOFLO_ALLOWED_HOSTS": "studio.local, gallery.studio.example",
        "FOTOFLO_CORS_ORIGINS": "https://site.example,",
        "FOTOFLO_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,,",
        "FOTOFLO_UPLOAD_BUFFER_BYTES": "5000000",
        "FOTOFLO_NOTIFY_INTERVAL_S": "300",
        "FOTOFLO_SMTP": "smtps://studio:pass@mail.studio.example:465",
        "FOTOFLO_SMTP_FROM": "gallery@studio.example",
    }
    assert set(environ) == {var for var, _ in ENV.values()}, "cover every variable of ENV"

    settings = Settings.from_env(environ)

    assert settings == Settings(
        data=tmp_path / "data",
        watch=tmp_path / "hot",
        project="wedding",
        port=7001,
        address="0.0.0.0",
        secret="s3cret-s3cret-s3cret-s3cret-s3cret",
        max_bytes=1_000_000,
        max_pixels=4_000_000,
        decode_timeout_s=5.0,
        rescan_s=2.5,
        heartbeat_s=3.0,
        wall=True,
        db="postgresql://fotoflo@db.studio:5432/fotoflo",
        bus="redis://cache.studio:6379/0",
        blobs="s3://photos/studio",
        supabase_url="https://ref.supabase.co",
        supabase_key="service-role-key",
        auth=True,
        max_files=7,
        upload_rate=60,
        login_failures=5,
        allowed_hosts=("studio.local", "gallery.studio.example"),
        cors_origins=("https://site.example",),
        trusted_proxy=("10.0.0.1", "192.168.0.0/16"),
        upload_buffer_bytes=5_000_000,
        notify_interval_s=300.0,
        smtp="smtps://studio:pass@mail.studio.example:465",
        smtp_from="gallery@studio.example",
    )


@pytest.mark.parametrize(("raw", "wall"), [("1", True), ("on", True), ("TRUE", True), ("0", False), ("no", False)])
def test_settings_wall_flag(raw: str, wall: bool, tmp_path: Path) -> None:
    assert Settings.from_env({"FOTOFLO_WALL": raw, "FOTOFLO_DATA": str(tmp_path)}).wall is wall


def test_settings_ignore_empty_vars_and_resolve_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"FOTOFLO_DATA": "studio-data", "FOTOFLO_WATCH": "hot", "FOTOFLO_PORT": ""})
    assert settings.data == tmp_path / "studio-data"
    assert settings.watch == tmp_path / "hot"
    assert settings.port == 5006


def test_overrides_win_over_env_vars_and_none_means_not_given(tmp_path: Path) -> None:
    environ = {"FOTOFLO_PORT": "7001", "FOTOFLO_PROJECT": "wedding", "FOTOFLO_DATA": str(tmp_path)}
    settings = Settings.from_env(environ, port=8002, project=None)
    assert (settings.port, settings.project) == (8002, "wedding")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """`fotoflo serve` up to the point it would start the server: the settings it would serve with."""
    seen: list[Settings] = []
    monkeypatch.setattr("dashboard.server.serve", seen.append)
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)  # keep the test process's logging as it is
    for var, _ in ENV.values():
        monkeypatch.delenv(var, raising=False)
    return seen


def test_serve_options_win_over_env_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Settings]
) -> None:
    monkeypatch.setenv("FOTOFLO_PORT", "7001")
    monkeypatch.setenv("FOTOFLO_PROJECT", "wedding")
    monkeypatch.setenv("FOTOFLO_DATA", str(tmp_path / "env-data"))
    monkeypatch.setenv("FOTOFLO_WALL", "1")

    assert main(["serve", "--port", "8002", "--data", str(tmp_path / "cli-data"), "--rescan-s", "5"]) == 0

    (settings,) = served
    assert settings.port == 8002
    assert settings.data == tmp_path / "cli-data"
    assert settings.rescan_s == 5.0
    assert settings.project == "wedding"
    assert settings.wall is True
    assert settings.watch == tmp_path / "cli-data" / "hotfolder"


def test_serve_repeatable_options_win_over_env_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Settings]
) -> None:
    monkeypatch.setenv("FOTOFLO_ALLOWED_HOSTS", "env.example")
    monkeypatch.setenv("FOTOFLO_TRUSTED_PROXIES", "10.0.0.9")
    args = ["--allowed-host", "studio.local", "--allowed-host", "a.example,b.example", "--cors-origin",
            "https://site.example", "--trusted-proxy", "127.0.0.1"]  # fmt: skip
    assert main(["serve", "--data", str(tmp_path), *args]) == 0
    (settings,) = served
    assert settings.allowed_hosts == ("studio.local", "a.example", "b.example")
    assert settings.cors_origins == ("https://site.example",)
    assert settings.trusted_proxy == ("127.0.0.1",)


def test_serve_watch_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Settings]) -> None:
    monkeypatch.setenv("FOTOFLO_WATCH", str(tmp_path / "env-hot"))
    main(["serve", "--data", str(tmp_path / "data")])
    main(["serve", "--data", str(tmp_path / "data"), "--watch", str(tmp_path / "cli-hot")])
    main(["serve", "--data", str(tmp_path / "data"), "--no-watch"])
    assert [s.watch for s in served] == [tmp_path / "env-hot", tmp_path / "cli-hot", None]


def test_serve_db_and_bus_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Settings]) -> None:
    monkeypatch.setenv("FOTOFLO_DB", "postgresql://env@db/fotoflo")
    monkeypatch.setenv("FOTOFLO_BUS", "postgres")
    main(["serve", "--data", str(tmp_path)])
    main(["serve", "--data", str(tmp_path), "--db", "postgresql://cli@db/fotoflo", "--bus", "redis://cache:6379/0"])
    assert [(s.db, s.bus) for s in served] == [
        ("postgresql://env@db/fotoflo", "postgres"),
        ("postgresql://cli@db/fotoflo", "redis://cache:6379/0"),
    ]


def test_serve_blobs_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Settings]) -> None:
    main(["serve", "--data", str(tmp_path)])
    monkeypatch.setenv("FOTOFLO_BLOBS", "s3://env-bucket/p")
    main(["serve", "--data", str(tmp_path)])
    main(["serve", "--data", str(tmp_path), "--blobs", "file:///srv/blobs"])
    assert [s.blobs for s in served] == [None, "s3://env-bucket/p", "file:///srv/blobs"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bus", "postgres"), "--bus postgres needs --db postgresql://"),
        (("--bus", "kafka://x"), "unknown bus 'kafka://x'"),
        (("--blobs", "gs://photos"), "unknown blobs 'gs://photos'"),
        (("--blobs", "file://photos"), "give a folder as file:///ABSOLUTE/PATH"),
        (("--supabase-url", "https://x.supabase.co"), "--supabase-url and --supabase-key"),
        (("--trusted-proxy", "proxy.studio"), "--trusted-proxy 'proxy.studio' is not an IP address or network"),
    ],
)
def test_serve_refuses_settings_that_cannot_work_in_one_line(tmp_path: Path, args: tuple[str, ...], message: str):
    done = fotoflo("serve", "--data", str(tmp_path / "data"), "--no-watch", "--port", "1", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


# -- start-up mistakes: one line naming the setting, exit 2, no traceback ---------------------------


def refused(done: subprocess.CompletedProcess[str], *named: str) -> str:
    """The one line a command stopped with; it names every one of `named`."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert all(name in lines[0] for name in named), lines[0]
    return lines[0]


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_serve_a_data_directory_that_cannot_be_made(tmp_path: Path) -> None:
    line = refused(fotoflo("serve", "--data", "/proc/nope", "--port", "0"), "--data", "/proc/nope")
    assert "cannot make the data directory" in line and "give a folder you can write to" in line
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    assert "is a file, not a folder" in refused(fotoflo("serve", "--data", str(a_file), "--port", "0"), "--data")


def test_serve_a_hot_folder_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "IMG_0001.jpg"
    a_file.write_bytes(b"")
    line = refused(fotoflo("serve", "--data", str(tmp_path / "data"), "--watch", str(a_file)), "--watch", str(a_file))
    assert "is a file, not a folder" in line and "--no-watch" in line
    line = refused(fotoflo("serve", "--data", str(tmp_path / "data"), "--watch", "/proc/nope"), "--watch")
    assert "cannot make the hot folder" in line


def test_serve_a_port_in_use(tmp_path: Path, port_in_use: int) -> None:
    done = fotoflo("serve", "--data", str(tmp_path / "data"), "--port", str(port_in_use), "--auth")
    line = refused(done, "--port", str(port_in_use))
    assert "is in use" in line and "give another --port" in line
    assert "fft_" not in done.stdout + done.stderr  # no owner token shown for a server that never ran


def test_serve_a_database_that_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"postgresql://fotoflo:hunter2-secret@127.0.0.1:{port}/fotoflo"
    done = fotoflo("serve", "--data", str(tmp_path / "data"), "--db", url, "--no-watch", "--port", "0")
    refused(done, "--db", f"127.0.0.1:{port}", "cannot open the database")
    assert "hunter2-secret" not in done.stdout + done.stderr


def test_serve_a_port_that_is_not_one(tmp_path: Path) -> None:
    refused(fotoflo("serve", "--data", str(tmp_path), "--port", "70000"), "--port", "70000")
    line = refused(fotoflo("serve", "--data", str(tmp_path), env={"FOTOFLO_PORT": "http"}), "FOTOFLO_PORT", "'http'")
    assert "is not a whole number" in line


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--secret", "s3cret"), {}, "--secret"),
        (("--secret", ""), {}, "--secret"),
        ((), {"FOTOFLO_SECRET": "s3cret"}, "FOTOFLO_SECRET"),
        ((), {"FOTOFLO_SECRET": ""}, "FOTOFLO_SECRET"),
    ],
    ids=["short", "empty", "short-env", "empty-env"],
)
def test_serve_refuses_a_weak_secret(tmp_path: Path, args: tuple[str, ...], env: dict[str, str], named: str) -> None:
    done = fotoflo("serve", "--data", str(tmp_path / "data"), "--no-watch", "--port", "0", *args, env=env)
    line = refused(done, named)
    assert "at least 32" in line
    assert not (tmp_path / "data" / "fotoflo.sqlite").exists()  # refused before anything was opened


@pytest.mark.parametrize("content", [b"", b"abc\n"], ids=["empty", "short"])
def test_serve_refuses_a_weak_secret_key_file(tmp_path: Path, content: bytes) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "secret.key").write_bytes(content)
    (data / "secret.key").chmod(0o600)  # as made now: nothing to tighten, nothing else to say
    line = refused(fotoflo("serve", "--data", str(data), "--no-watch", "--port", "0"), str(data / "secret.key"))
    assert "delete it" in line


def test_ingest_a_path_that_does_not_exist(tmp_path: Path, make_jpeg) -> None:
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(make_jpeg(seed=1))
    missing = tmp_path / "IMG_O001.jpg"  # a typo
    line = refused(fotoflo("ingest", str(photo), str(missing), "--data", str(tmp_path / "data")), "PATH", str(missing))
    assert "does not exist" in line
    assert not (tmp_path / "data").exists()  # nothing was imported: a typo costs no work


def test_ingest_a_data_directory_it_cannot_use(tmp_path: Path, make_jpeg) -> None:
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(make_jpeg(seed=1))
    refused(fotoflo("ingest", str(photo), "--data", str(photo)), "--data", "is a file, not a folder")
    refused(fotoflo("ingest", str(photo), "--data", "/proc/nope"), "--data", "cannot make the data directory")
    garbled = tmp_path / "garbled"
    garbled.mkdir(mode=0o700)
    (garbled / "fotoflo.sqlite").write_bytes(b"not a database, " * 512)
    (garbled / "fotoflo.sqlite").chmod(0o600)
    refused(fotoflo("ingest", str(photo), "--data", str(garbled)), "--data", "cannot be opened")


def test_sync_a_folder_that_is_missing_or_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "IMG_0001.jpg"
    a_file.write_bytes(b"")
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    server = ("--server", "http://127.0.0.1:9", "--once")
    line = refused(fotoflo("sync", str(a_file), *server, env=env), "FOLDER", str(a_file))
    assert "is a file, not a folder" in line
    line = refused(fotoflo("sync", str(tmp_path / "nope"), *server, env=env), "FOLDER", str(tmp_path / "nope"))
    assert "does not exist" in line


def test_sync_a_state_directory_that_cannot_be_made(tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    done = fotoflo("sync", str(folder), "--server", "http://127.0.0.1:9", "--once", "--state", "/proc/nope")
    assert "cannot make the state directory" in refused(done, "--state", "/proc/nope")
    a_file = tmp_path / "state"
    a_file.write_text("")
    done = fotoflo("sync", str(folder), "--server", "http://127.0.0.1:9", "--once", "--state", str(a_file))
    refused(done, "--state", "is a file, not a folder")
    done = fotoflo("sync", str(folder), "--server", "http://127.0.0.1:9", "--once", env={"XDG_STATE_HOME": "/proc/x"})
    refused(done, "state directory", "--state")


def test_sync_ui_port_in_use(port_in_use: int) -> None:
    line = refused(fotoflo("sync", "--ui", "--ui-port", str(port_in_use)), "--ui-port", str(port_in_use))
    assert "is in use" in line
