"""Param events of a model shared by many Panel sessions, each delivered on its own session's turn.

A `LiveImages` is one object per project and process, changed on its feed's thread. Param calls a
watcher in the thread that set the value; a Panel session must only be touched on its own loop, with
its document locked. So every watcher registered while a served session is current (`pn.bind`,
`param.depends`, `.param.watch` in an app script or a callback) is wrapped as it is registered: its
events are scheduled on that session's document (`doc.add_next_tick_callback`, which Bokeh allows
from any thread), run there with the session as Panel's current document, and the watcher is removed
when the session is destroyed. Watchers registered outside a served session (a script, a Jupyter
kernel, the model's own) are plain param watchers, called at once on the thread that changed the value.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import param
from param.parameterized import Parameters, Skip, iscoroutinefunction

if TYPE_CHECKING:
    from bokeh.document import Document

log = logging.getLogger("fotoflo.live")


def served_session() -> Document | None:
    """The document of the served Panel session this thread is working for, if any.

    Panel is not imported for it: a process that never loaded Panel has no session. A notebook's
    document has no session context (Jupyter's comms push from any thread): it is not one.
    """
    if "panel" not in sys.modules:
        return None
    from panel.io.state import state

    doc = state.curdoc
    return doc if doc is not None and doc.session_context is not None else None


class GuardedWatcher:
    """A watcher's function whose error is logged rather than raised into the update that called it.

    The update runs on the model's worker, where nobody could catch it, and an error would keep the
    watchers after it (other cells, other sessions) from that update.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self._call(args, kwargs)

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            if iscoroutinefunction(self.fn):  # as param runs one: on Panel's loop, through its executor
                param.parameterized.async_executor(partial(self.fn, *args, **kwargs))
            else:
                self.fn(*args, **kwargs)
        except Skip:
            pass
        except Exception:
            log.exception("a watcher of live images failed: %r", self.fn)


class SessionWatcher(GuardedWatcher):
    """A watcher's function, called on the turn of the session it was registered in."""

    def __init__(self, doc: Document, fn: Callable[..., Any]) -> None:
        super().__init__(fn)
        self.doc = doc
        self.thread = threading.get_ident()  # the thread that serves the session (it registers the watcher)
        self.gone = False

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        if self.gone:
            return
        # Already on this session's turn (one of its callbacks set a filter): at once, like param. The
        # thread is checked too: Panel's current document falls back on Bokeh's, which is one for all
        # threads, so the model's worker sees a session's document while the server runs its callback.
        if threading.get_ident() == self.thread and served_session() is self.doc:
            self._call(args, kwargs)
            return
        try:
            self.doc.add_next_tick_callback(partial(self._run, args, kwargs))
        except Exception:
            # A closing session must not stop the fan-out to the others.
            log.debug("a session went away before an update reached it", exc_info=True)

    def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.gone:
            return
        from panel.io.state import set_curdoc

        with set_curdoc(self.doc):
            self._call(args, kwargs)

    def forget_on_close(self, owner: param.Parameterized, watcher: param.parameterized.Watcher) -> None:
        """Remove `watcher` from `owner` when the session is destroyed: a closed tab leaves nothing behind."""

        def destroyed(_: object) -> None:
            self.gone = True
            owner.param.unwatch(watcher)

        self.doc.on_session_destroyed(destroyed)


class SessionParameters(Parameters):
    """`.param` of a model shared by sessions: watchers made in a served session run in that session.

    Every way of watching (`watch`, `param.depends`, `pn.bind`, references) registers through
    `Parameters._watch`; it is the one place the wrapping can be done for all of them.
    """

    def _watch(
        self_,
        fn: Callable[..., Any],
        parameter_names: str | list[str] | tuple[str, ...],
        what: str = "value",
        onlychanged: bool = True,
        queued: bool = False,
        precedence: int = -1,
    ) -> param.parameterized.Watcher:
        owner = self_.self
        if owner is None or not getattr(owner, "_per_session", False):
            return super()._watch(fn, parameter_names, what, onlychanged, queued, precedence)  # the model's own
        doc = served_session()
        if doc is None:
            # A script's or a kernel's: at once, on the thread that changed the value. param itself
            # schedules an async function (with its `async_executor`): left to it.
            guarded = fn if iscoroutinefunction(fn) else GuardedWatcher(fn)
            return super()._watch(guarded, parameter_names, what, onlychanged, queued, precedence)
        hop = SessionWatcher(doc, fn)
        watcher = super()._watch(hop, parameter_names, what, onlychanged, queued, precedence)
        hop.forget_on_close(owner, watcher)
        return watcher


def watch_where_changed(
    owner: param.Parameterized, fn: Callable[..., Any], names: list[str]
) -> param.parameterized.Watcher:
    """Watch `names` of `owner` with `fn` called on the thread that changes them, even from a session."""
    return Parameters._watch(owner.param, fn, names, precedence=1)


class SessionParametersDescriptor:
    """`Model.param`: the class's `Parameters` on the class, a `SessionParameters` on an instance."""

    def __get__(self, obj: param.Parameterized | None, objtype: type[param.Parameterized]) -> Parameters:
        if obj is None:
            return objtype._param__parameters  # what param's own `_NS` gives the class
        return SessionParameters(objtype, self=obj)
