"""`load_or_create_secret`: the key that signs file URLs is strong, private and made atomically."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.config import ConfigError
from dashboard.signing import MIN_SECRET_BYTES, UrlSigner, load_or_create_secret

STRONG = "x" * MIN_SECRET_BYTES
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a plain `open()` makes a file every user can read."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_key_is_32_random_bytes_private_to_this_user(tmp_path: Path, umask_022: None) -> None:
    data = tmp_path / "data"

    key = load_or_create_secret(data)

    assert len(key) >= MIN_SECRET_BYTES
    assert (data / "secret.key").read_bytes() == key
    assert mode(data / "secret.key") == 0o600 and mode(data) == 0o700
    assert load_or_create_secret(data) == key  # kept, not made again
    assert load_or_create_secret(tmp_path / "other") != key  # random, not derived
    assert sorted(p.name for p in data.iterdir()) == ["secret.key"]  # no temp file left behind


RACE = """
import os, sys, time
from pathlib import Path
from dashboard.signing import load_or_create_secret
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
sys.stdout.write(load_or_create_secret(Path(sys.argv[1])).decode())
"""


def test_servers_starting_at_once_on_a_fresh_data_directory_share_one_key(tmp_path: Path) -> None:
    # Servers on a shared data directory must sign with the same key, or one's URLs fail on the other.
    data, go = tmp_path / "data", tmp_path / "go"
    data.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", RACE, str(data), str(go)], stdout=subprocess.PIPE, env=env, cwd=ROOT)
        for _ in range(6)
    ]
    go.touch()  # all start at once (they import first, then wait for this)
    keys = {proc.communicate(timeout=60)[0] for proc in procs}

    assert all(proc.returncode == 0 for proc in procs)
    assert keys == {(data / "secret.key").read_bytes()}
    assert sorted(p.name for p in data.iterdir()) == ["secret.key"]


@pytest.mark.parametrize("content", [b"", b"\n", b"short-key\n", b"y" * (MIN_SECRET_BYTES - 1)])
def test_an_empty_or_short_key_file_is_refused_with_what_to_do(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "secret.key").write_bytes(content)

    with pytest.raises(ConfigError) as refused:
        load_or_create_secret(tmp_path)

    message = str(refused.value)
    assert str(tmp_path / "secret.key") in message and "delete it" in message and "--secret" in message
    assert "\n" not in message
    assert (tmp_path / "secret.key").read_bytes() == content  # not replaced behind the user's back


@pytest.mark.parametrize("configured", ["", "s3cret", "z" * (MIN_SECRET_BYTES - 1)])
def test_a_short_or_empty_configured_secret_is_refused(tmp_path: Path, configured: str) -> None:
    with pytest.raises(ConfigError, match=r"--secret \(FOTOFLO_SECRET\) is (empty|too short)"):
        load_or_create_secret(tmp_path, configured)
    assert not (tmp_path / "secret.key").exists()


def test_a_long_enough_configured_secret_signs(tmp_path: Path) -> None:
    key = load_or_create_secret(tmp_path, STRONG)
    assert key == STRONG.encode()
    assert not (tmp_path / "secret.key").exists()  # given, so none is made
    signer = UrlSigner(key)
    url = signer.url("img", "thumb", now_s=0)
    exp, sig = url.split("exp=")[1].split("&sig=")
    assert signer.verify("img", "thumb", exp, sig, now_s=0)
    assert not UrlSigner(b"x" * 40).verify("img", "thumb", exp, sig, now_s=0)


def test_a_key_from_an_older_version_still_works(tmp_path: Path) -> None:
    # Older versions wrote `secrets.token_urlsafe(32)`, 43 characters, with `touch(mode=0o600)`.
    old = b"Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"[:43]
    (tmp_path / "secret.key").write_bytes(old)
    assert load_or_create_secret(tmp_path) == old
