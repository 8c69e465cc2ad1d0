"""`S3Blobs`: content-addressed image files in an S3 bucket (AWS, or R2, B2, MinIO: any S3-compatible store).

Objects are named like `FileBlobs`' files, `PREFIX/kind/ab/sha256`. The same key always holds the
same bytes, and an S3 PUT replaces an object whole, so two servers writing one key at once is
harmless: whichever lands last wrote the same bytes. The server proxies the files (`open` with a
byte range), so the bucket stays private and each request passes Fotoflo's own checks first
(docs/several-servers.md says why not presigned redirects).

The endpoint, region and credentials are boto3's: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`),
`AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
`AWS_PROFILE` and the shared config files. Needs the `s3` extra (boto3).
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dashboard.blobs import BlobReader, check_key, content_type
from dashboard.config import ConfigError

log = logging.getLogger("fotoflo.s3blobs")

# botocore at DEBUG writes every request's headers (the Authorization header, the access key id):
# whatever --log-level says, the AWS libraries say no more than warnings.
for _name in ("boto3", "botocore", "s3transfer"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MIB = 1024 * 1024
#: An upload this big or bigger goes in parts (of `PART_BYTES`, several at once), so no single
#: request carries a whole RAW file and a failed part is retried alone.
MULTIPART_THRESHOLD_BYTES = 16 * MIB
PART_BYTES = 8 * MIB
#: A multipart upload started this long ago and never finished was abandoned (its server died):
#: `clean_temp` aborts it, so its parts stop costing storage. Long enough that no live upload is hit.
STALE_UPLOAD_AGE = timedelta(days=1)
_SIZES_KEPT = 4096


class S3Blobs:
    """`Blobs` in `bucket` under `prefix` (`""`: the bucket's top), through a boto3 S3 `client`.

    `client` defaults to one configured from the environment (see the module's docstring). The
    sizes of blobs seen are kept (the keys are content-addressed, so a size never changes), which
    saves a HEAD request on most file requests.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        multipart_threshold_bytes: int = MULTIPART_THRESHOLD_BYTES,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client if client is not None else make_client()
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold_bytes, multipart_chunksize=part_bytes, max_concurrency=4
        )
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._sizes_lock = threading.Lock()

    @property
    def url(self) -> str:
        """`s3://BUCKET/PREFIX` (for messages: it holds no secret)."""
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, kind: str, sha256: str) -> str:
        """The object name of a blob (`ValueError` for a kind or hash that is not one)."""
        check_key(kind, sha256)
        return f"{self.prefix}{kind}/{sha256[:2]}/{sha256}"

    def check(self) -> None:
        """`ConfigError`, naming the bucket and the reason, unless the bucket can be reached with these credentials."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code", "")
            why = {404: "no such bucket", 403: "access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"}
            raise ConfigError(f"--blobs {self.url}: {why.get(status, f'{status} {code}')}") from None
        except BotoCoreError as exc:  # no credentials, no endpoint, bad region: botocore's message names none
            raise ConfigError(f"--blobs {self.url}: cannot reach the bucket: {exc}") from None

    def put(self, kind: str, sha256: str, data: bytes) -> None:
        key = self.key(kind, sha256)
        if self._size(key) == len(data):
            return  # content-addressed: same key, same bytes
        self.client.upload_fileobj(
            io.BytesIO(data),
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type(kind, data)},
            Config=self._transfer,
        )
        self._remember(key, len(data))

    def exists(self, kind: str, sha256: str) -> bool:
        return self._size(self.key(kind, sha256)) is not None

    def size(self, kind: str, sha256: str) -> int | None:
        return self._size(self.key(kind, sha256))

    def open(self, kind: str, sha256: str, start: int = 0, stop: int | None = None) -> BlobReader:
        key = self.key(kind, sha256)
        if stop is not None and stop <= start:
            if self._size(key) is None:
                raise FileNotFoundError(f"no blob {kind}/{sha256}")
            return io.BytesIO(b"")
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or stop is not None:
            args["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(f"no blob {kind}/{sha256}") from None
            raise
        return body  # botocore's StreamingBody: read(n), close()

    def delete(self, kind: str, sha256: str) -> None:
        """Remove the blob, if it is there (no caller deletes yet: the store keeps every version)."""
        key = self.key(kind, sha256)
        self.client.delete_object(Bucket=self.bucket, Key=key)
        with self._sizes_lock:
            self._sizes.pop(key, None)

    def clean_temp(self) -> int:
        """Abort the multipart uploads under the prefix that were started over a day ago; returns how many.

        A store that cannot list them (not every S3-compatible one can) is logged and skipped.
        """
        cutoff = datetime.now(UTC) - STALE_UPLOAD_AGE
        aborted = 0
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (ClientError, BotoCoreError) as exc:
            log.warning("%s: cannot list unfinished uploads (%s); left as they are", self.url, exc)
        return aborted

    def close(self) -> None:
        self.client.close()

    def _size(self, key: str) -> int | None:
        with self._sizes_lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
                return self._sizes[key]
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        size = int(head["ContentLength"])
        self._remember(key, size)
        return size

    def _remember(self, key: str, size: int) -> None:
        with self._sizes_lock:
            self._sizes[key] = size
            self._sizes.move_to_end(key)
            while len(self._sizes) > _SIZES_KEPT:
                self._sizes.popitem(last=False)


def make_client() -> Any:
    """A boto3 S3 client configured from the environment, with retries for the flaky moments of a network store."""
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return boto3.session.Session().client("s3", config=config)


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or error.get("Code") in ("404", "NoSuchKey", "NotFound")
