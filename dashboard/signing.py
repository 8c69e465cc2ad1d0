"""HMAC-signed, expiring file URLs: `/files/{image_id}/{kind}?exp=…&sig=…`.

Expiries are rounded up to a bucket, so the same file keeps the same URL for a while and
browsers and proxies can cache it as immutable. A share link with a watermark gets URLs of its own
(`&l={link id}.{watermark version}`, signed too): the file handler burns that link's watermark in.
"""

from __future__ import annotations

import base64
import hmac
import math
import os
import secrets
import time
from pathlib import Path

from dashboard.config import ConfigError
from dashboard.datadir import private_dir, write_private_file

DEFAULT_TTL_S = 24 * 3600
BUCKET_S = 3600
#: The shortest key that signs URLs: 32 bytes (characters, for `--secret`); a made one has 32 random bytes.
MIN_SECRET_BYTES = 32
SECRET_FILE = "secret.key"


def load_or_create_secret(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured secret (`--secret`), else `DATA/secret.key`, generated on first run.

    `ConfigError` for a configured secret or a key file shorter than `MIN_SECRET_BYTES` (or empty):
    an HMAC with a short key lets anyone who can guess it sign URLs to every file. The key file is
    made atomically (0600, written and fsynced under a temp name, then linked into place), so a
    crash never leaves an empty key, and two servers starting at once on a fresh shared data
    directory end up with the same key.
    """
    if configured is not None:
        if len(configured) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"--secret (FOTOFLO_SECRET) is {'empty' if not configured else 'too short'}: give at least "
                f"{MIN_SECRET_BYTES} random characters (e.g. from `openssl rand -base64 32`), or leave it out to "
                f"have a key made in DATA/{SECRET_FILE}"
            )
        return configured.encode()
    path = Path(data_dir) / SECRET_FILE
    try:
        return _checked(path, path.read_bytes().strip())
    except FileNotFoundError:
        pass
    private_dir(Path(data_dir))
    key = secrets.token_urlsafe(MIN_SECRET_BYTES).encode()
    temp = path.with_name(f"{SECRET_FILE}.tmp-{secrets.token_hex(4)}")
    try:
        write_private_file(temp, key)
        try:
            os.link(temp, path)  # unlike a rename, never replaces a key another process just made
        except FileExistsError:
            return _checked(path, path.read_bytes().strip())
        except OSError:
            os.replace(temp, path)  # a file system without hard links
        _fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)
    return key


def _checked(path: Path, key: bytes) -> bytes:
    if len(key) < MIN_SECRET_BYTES:
        state = "empty" if not key else f"only {len(key)} bytes long"
        raise ConfigError(
            f"{path} is {state}, too weak to sign file URLs: delete it to have a new key made at the next start "
            f"(file URLs given out before stop working), or give --secret with at least {MIN_SECRET_BYTES} characters"
        )
    return key


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UrlSigner:
    def __init__(self, secret: bytes, *, ttl_s: int = DEFAULT_TTL_S, prefix: str = "") -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.prefix = prefix.rstrip("/")

    def _sig(self, image_id: str, kind: str, exp: int, link: str | None = None) -> str:
        message = f"{image_id}/{kind}/{exp}" if link is None else f"{image_id}/{kind}/{exp}/{link}"
        mac = hmac.digest(self._secret, message.encode(), "sha256")
        return base64.urlsafe_b64encode(mac[:18]).decode()  # 24 URL-safe characters, no padding

    def url(self, image_id: str, kind: str, *, now_s: float | None = None, link: str | None = None) -> str:
        """The signed URL; `link` (`{share id}.{watermark version}`, URL-safe) for a watermarked link's."""
        now_s = time.time() if now_s is None else now_s
        exp = int(math.ceil((now_s + self.ttl_s) / BUCKET_S) * BUCKET_S)
        # Three URLs per image in every list page: an f-string, since neither value needs quoting.
        url = f"{self.prefix}/files/{image_id}/{kind}?exp={exp}&sig={self._sig(image_id, kind, exp, link)}"
        return url if link is None else f"{url}&l={link}"

    def verify(
        self,
        image_id: str,
        kind: str,
        exp: str | None,
        sig: str | None,
        *,
        now_s: float | None = None,
        link: str | None = None,
    ) -> bool:
        # Query values are untrusted text: str.isdigit() also admits digits int() refuses ('²'), and
        # compare_digest() raises on non-ASCII str, so check ASCII and compare bytes.
        if not exp or not sig or len(exp) > 20 or not (exp.isascii() and exp.isdigit()):
            return False
        if int(exp) < (time.time() if now_s is None else now_s):
            return False
        if link is not None and (len(link) > 40 or not link.isascii()):
            return False
        return hmac.compare_digest(self._sig(image_id, kind, int(exp), link).encode(), sig.encode())
