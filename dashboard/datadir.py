"""The data directory is private to its user: folders 0700, files 0600, whatever the umask.

Originals, previews, the database and the URL-signing key are nobody else's business on a shared
machine. New folders and files are made with these modes (`os.open`/`os.mkdir` with the mode, then
`chmod`, since the umask can only remove bits); `tighten` fixes what older versions left 0755/0644.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
#: The data directory's own files (SQLite's -wal and -shm copy the database file's mode when made).
PRIVATE_FILES = (
    "fotoflo.sqlite", "fotoflo.sqlite-wal", "fotoflo.sqlite-shm", "auth.sqlite", "auth.sqlite-wal",
    "auth.sqlite-shm", "secret.key", "quarantine.json",
)  # fmt: skip
#: Folders whose whole tree is private (blobs, and the Supabase blob cache).
PRIVATE_TREES = ("blobs", "blob-cache", "tmp")


def private_dir(path: Path) -> Path:
    """Make `path` and any missing parents as folders only this user can enter (0700); returns `path`.

    An existing folder is left as it is (`tighten` is for that); `OSError` when it cannot be made.
    """
    path = Path(path)
    if path.is_dir():
        return path
    missing = []
    for parent in (path, *path.parents):
        if parent.is_dir():
            break
        missing.append(parent)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by another process meanwhile
        os.chmod(folder, DIR_MODE)
    return path


def create_private_file(path: Path, flags: int = os.O_WRONLY) -> int:
    """Create `path` (which must not exist) readable by this user only (0600); returns the open descriptor."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` (which must not exist) as a private file (0600) holding `data`, flushed to disk."""
    with open(create_private_file(path), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def touch_private(path: Path) -> None:
    """Create `path` empty and private (0600) unless it exists: before SQLite opens it, so it is never 0644."""
    with contextlib.suppress(FileExistsError):
        os.close(create_private_file(path))


def tighten(data: Path) -> tuple[list[Path], list[Path]]:
    """Take group and other permissions off the data directory, its files and blob trees.

    Returns what was changed and what could not be (owned by another user, say). Blob trees are
    walked only when their top folder is open to others (as older versions made it), and that
    folder is fixed last, so an interrupted run is finished at the next start.
    """
    changed: list[Path] = []
    failed: list[Path] = []
    _private(data, DIR_MODE, changed, failed)
    for name in PRIVATE_FILES:
        _private(data / name, FILE_MODE, changed, failed)
    for name in PRIVATE_TREES:
        root = data / name
        try:
            if not root.is_dir() or not root.stat().st_mode & 0o077:
                continue
        except OSError:
            continue
        for folder, dirs, files in os.walk(root):
            for d in dirs:
                _private(Path(folder, d), DIR_MODE, changed, failed)
            for f in files:
                _private(Path(folder, f), FILE_MODE, changed, failed)
        _private(root, DIR_MODE, changed, failed)
    return changed, failed


def _private(path: Path, mode: int, changed: list[Path], failed: list[Path]) -> None:
    """Clear the group and other bits of `path` (and make sure its owner has `mode`'s)."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077:
            return  # a link's target is not ours to change
        os.chmod(path, (stat.S_IMODE(st.st_mode) & ~0o077) | (mode & 0o700))
    except FileNotFoundError:
        return
    except OSError:
        failed.append(path)
        return
    changed.append(path)
