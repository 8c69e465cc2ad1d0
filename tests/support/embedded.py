"""An in-process Fotoflo: a real SQLite store, file blobs, the in-process bus and the ingestor over them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dashboard.blobs import FileBlobs
from dashboard.bus import LocalBus
from dashboard.ingest import Ingestor
from dashboard.store.sqlite import SQLiteStore


@dataclass
class Embedded:
    data: Path
    store: SQLiteStore
    blobs: FileBlobs
    bus: LocalBus
    ingestor: Ingestor


def open_embedded(data: Path) -> Embedded:
    """The system in data directory `data`, with its project "default"; the caller closes its store."""
    store = SQLiteStore(data / "fotoflo.sqlite")
    store.ensure_project("default")
    blobs = FileBlobs(data / "blobs")
    bus = LocalBus()
    return Embedded(data, store, blobs, bus, Ingestor(store, blobs, bus))
