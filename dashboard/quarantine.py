"""Files whose decoder died, remembered so that the hot folder and `fotoflo ingest` never feed them to one again."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from dashboard.datadir import private_dir, write_private_file

log = logging.getLogger("fotoflo.quarantine")

QUARANTINE_FILE = "quarantine.json"  # in the data directory


class Quarantine:
    """Files whose decoder died, by SHA-256: refused without decoding until their bytes change.

    Kept as JSON in `path` (mode 0600), rewritten atomically on every addition, so a file that
    crashes a decoder cannot do it again after a restart. Remove an entry (or the file) to retry.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        try:
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict):
                self._entries = {str(k): v for k, v in loaded.items() if isinstance(v, dict)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable quarantine list %s (%s)", self.path, exc)

    def reason(self, sha256: str) -> str | None:
        """Why these bytes are quarantined, or None."""
        with self._lock:
            entry = self._entries.get(sha256)
        return str(entry.get("reason", "the decoder failed")) if entry is not None else None

    def add(self, sha256: str, filename: str, reason: str) -> None:
        with self._lock:
            self._entries[sha256] = {"filename": filename, "reason": reason, "at": time.time()}
            text = json.dumps(self._entries, indent=1, sort_keys=True)
            tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
            private_dir(self.path.parent)
            write_private_file(tmp, text.encode())
            os.replace(tmp, self.path)
