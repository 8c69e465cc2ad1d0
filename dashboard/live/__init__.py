"""Live images: a project's images as a param model that follows the change feed (see docs/live.md).

    from dashboard.live import live_images
    live = live_images(app)                      # in a `panel serve` app (the plugin's `app`) or `fotoflo serve`
    pn.bind(lambda n: f"{n} images", live.param.count)

    live = dashboard.open("http://studio:5006", "wedding").live()   # in a notebook or a script
    live.param.watch(lambda e: print(e.new), "count")

One `LiveImages` per source and project in a process, shared by everyone who asks for it.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Hashable

from dashboard.live import registry
from dashboard.live.model import WINDOW, Delta, LiveImages
from dashboard.live.source import Source

__all__ = ["WINDOW", "Delta", "LiveImages", "close_all", "live_images", "live_remote"]

#: How long asking for a model waits for its first page and count, in seconds.
READY_TIMEOUT_S = 10.0


def live_images(app: object, project: str | None = None, *, window: int = WINDOW) -> LiveImages:
    """The live images of `project` (default: the app's) of the `App` of this process.

    Call it where the app's feed hub has a loop: in a session of the server that serves the app, or
    after `app.start(loop)` (see `HubSource`). The first call reads the newest `window` images and the
    count from the store before it returns. Raises `LookupError` for a project the store does not have.
    """
    from dashboard.app import App
    from dashboard.live.hub_source import HubSource

    if not isinstance(app, App):
        raise TypeError(f"live_images() takes the App of this process, not {type(app).__name__}")
    name = project or app.settings.project
    if not app.store.has_project(name):
        raise LookupError(f"no project {name!r} in this app's store")
    return _shared(HubSource.key_of(app, name), lambda: HubSource(app, name), window, wait_s=READY_TIMEOUT_S)


def live_remote(
    url: str,
    project: str = "default",
    *,
    token: str | None = None,
    window: int = WINDOW,
    wait_s: float = READY_TIMEOUT_S,
) -> LiveImages:
    """The live images of `project` on the Fotoflo server at `url`, followed over its event stream.

    Waits up to `wait_s` for the first page and count. A server that does not answer is no error: the
    model is returned with `connected` False and fills in once the server is up. Raises `LookupError`
    when the server answers that the project is unknown, `PermissionError` when it refuses the token.
    """
    from dashboard.client import ApiError
    from dashboard.live.sse_source import SseSource

    key = SseSource.key_of(url, project, token)
    live = _shared(key, lambda: SseSource(url, project, token=token), window, wait_s=wait_s)
    error = live.error
    if not live.wait_ready(0) and isinstance(error, ApiError) and error.status in (401, 403, 404):
        live.close()
        raise (PermissionError if error.status in (401, 403) else LookupError)(str(error)) from error
    return live


def _shared(key: Hashable, feed: Callable[[], Source], window: int, *, wait_s: float) -> LiveImages:
    """The model of `key`, made with a new `feed()` the first time; waits up to `wait_s` for its first state."""
    live, made = registry.shared(key, lambda: LiveImages(feed(), window=window, key=key))
    if not made and window > live.window:
        live.window = window  # the larger window wins: others may rely on theirs
    live.wait_ready(wait_s)
    return live


@atexit.register
def close_all() -> None:
    """Close every live model of this process (also run at interpreter exit)."""
    for live in registry.every():
        live.close()
