"""HMAC-signed, expiring file URLs: `/files/{image_id}/{kind}?exp=…&sig=…`.

Expiries are rounded up to a bucket, so the same file keeps the same URL for a while and
browsers and proxies can cache it as immutable.
"""

from __future__ import annotations

import base64
import hmac
import math
import secrets
import time
from pathlib import Path

DEFAULT_TTL_S = 24 * 3600
BUCKET_S = 3600


def load_or_create_secret(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured secret, else the one generated into the data dir on first run."""
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32).encode()
    path.touch(mode=0o600)
    path.write_bytes(key)
    return key


class UrlSigner:
    def __init__(self, secret: bytes, *, ttl_s: int = DEFAULT_TTL_S, prefix: str = "") -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.prefix = prefix.rstrip("/")

    def _sig(self, image_id: str, kind: str, exp: int) -> str:
        mac = hmac.digest(self._secret, f"{image_id}/{kind}/{exp}".encode(), "sha256")
        return base64.urlsafe_b64encode(mac[:18]).decode()  # 24 URL-safe characters, no padding

    def url(self, image_id: str, kind: str, *, now_s: float | None = None) -> str:
        now_s = time.time() if now_s is None else now_s
        exp = int(math.ceil((now_s + self.ttl_s) / BUCKET_S) * BUCKET_S)
        # Three URLs per image in every list page: an f-string, since neither value needs quoting.
        return f"{self.prefix}/files/{image_id}/{kind}?exp={exp}&sig={self._sig(image_id, kind, exp)}"

    def verify(self, image_id: str, kind: str, exp: str | None, sig: str | None, *, now_s: float | None = None) -> bool:
        # Query values are untrusted text: str.isdigit() also admits digits int() refuses ('²'), and
        # compare_digest() raises on non-ASCII str, so check ASCII and compare bytes.
        if not exp or not sig or len(exp) > 20 or not (exp.isascii() and exp.isdigit()):
            return False
        if int(exp) < (time.time() if now_s is None else now_s):
            return False
        return hmac.compare_digest(self._sig(image_id, kind, int(exp)).encode(), sig.encode())
