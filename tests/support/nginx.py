"""Debian's nginx in front of test servers, running the config shipped as docs/deploy/nginx.conf.

The shipped file is used as it is, with its example ports, name and certificate swapped for the test's
own, so that a change to it is tested. nginx runs as its own master process (not a daemon), with every
path (pid, logs, temp files) in the test's directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ROOT, free_port, stop_process
from tests.support.waiting import wait_until

SHIPPED = ROOT / "docs" / "deploy" / "nginx.conf"
NAME = "photos.example.com"  # the example name in the shipped file


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` and its key, made with openssl (the test's browser ignores the issuer)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def site_config(upstreams: list[int], *, name: str, https_port: int, http_port: int, cert: Path, key: Path) -> str:
    """docs/deploy/nginx.conf for this test: its upstream servers, listening ports, name and certificate."""
    text = SHIPPED.read_text()
    for example, port in zip(("127.0.0.1:5006", "127.0.0.1:5007"), upstreams, strict=True):
        assert example in text, f"{SHIPPED} no longer names {example}"
        text = text.replace(example, f"127.0.0.1:{port}")
    swaps = {
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        f"/etc/ssl/certs/{NAME}.pem": str(cert),
        f"/etc/ssl/private/{NAME}.key": str(key),
        NAME: name,
    }
    for old, new in swaps.items():
        assert old in text, f"{SHIPPED} no longer has {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    """nginx on 127.0.0.1: HTTPS on `https_port` (as `name`), plain HTTP on `http_port`."""

    name: str
    https_port: int
    http_port: int
    directory: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"https://{self.name}:{self.https_port}"

    def log(self) -> str:
        return (self.directory / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=10)


def start_nginx(directory: Path, upstreams: list[int], *, name: str = "photos.test", connections: int = 1024) -> Nginx:
    """Start nginx with the shipped config in front of the servers on `upstreams` (loopback ports).

    `connections` bounds its worker's connections: each stream it passes on holds two (client, upstream).
    """
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(directory, name)
    https_port, http_port = free_port(), free_port()
    site = site_config(upstreams, name=name, https_port=https_port, http_port=http_port, cert=cert, key=key)
    temp = "".join(
        f"    {kind}_temp_path {directory / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would switch to `nobody`, who cannot read pytest's directories.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {directory / 'nginx.pid'};\nerror_log {directory / 'error.log'} info;\n"
        f"events {{ worker_connections {connections}; }}\nworker_rlimit_nofile {connections * 2};\n"
        f"http {{\n    access_log {directory / 'access.log'};\n{temp}{site}\n}}\n"
    )
    with open(directory / "stderr.log", "wb") as stderr:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip

    def listening() -> bool:
        assert proc.poll() is None, (directory / "stderr.log").read_text(errors="replace")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", https_port)) == 0

    wait_until(listening, timeout_s=10)
    return Nginx(name, https_port, http_port, directory, proc)
