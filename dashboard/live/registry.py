"""One `LiveImages` per source and project in a process: every session and notebook cell shares it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.live.model import LiveImages

_models: dict[Hashable, LiveImages] = {}
_lock = threading.Lock()


def shared(key: Hashable, make: Callable[[], LiveImages]) -> tuple[LiveImages, bool]:
    """The model for `key`, made by `make()` the first time (under the lock); and whether it was made now."""
    with _lock:
        model = _models.get(key)
        if model is not None:
            return model, False
        model = _models[key] = make()
        return model, True


def forget(key: Hashable, model: LiveImages) -> None:
    """Drop `model` (closed) from the registry, unless another has taken its place."""
    with _lock:
        if _models.get(key) is model:
            del _models[key]


def every() -> list[LiveImages]:
    with _lock:
        return list(_models.values())
