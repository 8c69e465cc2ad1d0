"""The sync client: a folder kept uploaded to a Fotoflo project, through a crash-safe queue.

Producer (`scanner`: the hot folder's watcher and scans) → durable queue (`queue`: SQLite) →
consumer (`uploader`, over `transport`: the HTTP API); `client.SyncClient` wires them together.
"""

from dashboard.sync.client import SyncClient, SyncStatus, default_state_root, read_status, state_dir_for
from dashboard.sync.queue import SyncQueue

__all__ = ["SyncClient", "SyncQueue", "SyncStatus", "default_state_root", "read_status", "state_dir_for"]
