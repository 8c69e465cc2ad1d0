"""The live gallery: state in `param`, a keyed browser component patched one image at a time.

`LiveGallery` is the browser piece (a `JSComponent`, see assets/gallery.js): it pages images
from the HTTP API and holds its own resumable SSE subscription, so one new image costs one
small event and no existing tile is re-created; its Live badge is the truth about that stream.
`Gallery` is what people compose: in `fotoflo serve`, in `panel serve`, or in a notebook. Its params
(project, mode, filters, height) reach the page after construction, and what the user picks in the
page (mode, filters, selection) comes back; `gallery.live` is the project's shared `LiveImages`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import param
from panel.custom import JSComponent
from panel.viewable import Viewer

from dashboard import i18n
from dashboard.auth.store import DOWNLOADS
from dashboard.events import FLAGS, LABELS
from dashboard.live.model import LiveImages

log = logging.getLogger("fotoflo.gallery")

ASSETS = Path(__file__).parent / "assets"
MODES = ("grid", "collection", "wall")
#: What `?mode=` may say: `single` is Single mode's name in the page's switch.
MODE_ALIASES = {"single": "grid"}
#: Images fetched per page while scrolling (the first page fills a large screen).
PAGE_SIZE = 60
#: The wall shows the newest image on its stage and this many before it in a strip beneath: its one
#: page is exactly what it can show (wall.js reads the strip's length back as `page_size - 1`).
WALL_STRIP = 12
#: The heartbeat a page asks of the server, in seconds, at most: the Live badge turns Offline after
#: 2.5 missed beats (at least 4 s), which keeps the promise of `Offline` within 5 s of losing the
#: connection. A server set to beat faster (`--heartbeat-s`) is followed; a slower one is not.
PAGE_HEARTBEAT_S = 1.5

#: The page's filters: params of the gallery and of its browser component, kept in step both ways.
FILTERS = ("min_rating", "flag", "label")

_IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([\w-]+)\.js";$')
_EXPORT = re.compile(r"^export (?:const|let|(?:async )?function|class) (\w+)")


def esm_bundle(entry: Path) -> str:
    """The ES module `entry` with the sibling modules it imports (`import {a} from "./x.js"`) joined in.

    Panel sends a `JSComponent`'s `_esm` to the browser as one module (a `blob:` URL), where relative
    imports cannot resolve, and bundling files takes `panel compile` (node and esbuild). So the modules
    are joined here, without a build step: dependencies first, in the order their imports give (never a
    hand-kept list), each in its own function scope whose value is its exports; only `entry`'s exports
    stay the module's. A missing module, an unknown name, an import cycle or an import of another form
    raises ValueError naming the file.
    """
    done: dict[str, list[str]] = {}  # module stem -> its exported names, once its code is emitted
    chunks: list[str] = []

    def visit(stem: str, chain: tuple[str, ...]) -> list[str]:
        if stem in chain:
            raise ValueError(f"{entry.parent}: import cycle {' -> '.join((*chain, stem))}")
        if stem in done:
            return done[stem]
        path = entry.parent / f"{stem}.js"
        if not path.is_file():
            who = f"{chain[-1]}.js imports ./{stem}.js" if chain else f"the module {path}"
            raise ValueError(f"{who}: no such file in {entry.parent}")
        lines = path.read_text(encoding="utf-8").splitlines()
        exports = [m.group(1) for line in lines if (m := _EXPORT.match(line))]
        is_entry = path == entry
        body = []
        for line in lines:
            if match := _IMPORT.match(line):
                names = [n.strip() for n in match.group(1).split(",") if n.strip()]
                available = visit(match.group(2), (*chain, stem))
                if unknown := [n for n in names if n not in available]:
                    raise ValueError(f"{path}: ./{match.group(2)}.js does not export {', '.join(unknown)}")
                body.append(f"const {{ {', '.join(names)} }} = {_scope(match.group(2))};")
            elif line.startswith(("import ", "export {", "export default")):
                raise ValueError(
                    f'{path}: only `import {{ a, b }} from "./x.js";` and `export <declaration>` are joined: {line!r}'
                )
            else:
                body.append(line if is_entry or not _EXPORT.match(line) else line.removeprefix("export "))
        if is_entry:
            chunks.append(f"// ---- {path.name}\n" + "\n".join(body))
        else:
            code = "\n".join(body)
            value = f"{{ {', '.join(exports)} }}"
            chunks.append(f"// ---- {path.name}\nconst {_scope(stem)} = (() => {{\n{code}\nreturn {value};\n}})();")
        done[stem] = exports
        return exports

    visit(entry.stem, ())
    return "\n\n".join(chunks) + "\n"


def _scope(stem: str) -> str:
    return "__fotoflo_" + stem.replace("-", "_")


class LiveGallery(JSComponent):
    """The browser half of the gallery: tiles keyed by image id, fed by the project's SSE stream."""

    api_base = param.String(default="", doc="URL prefix of the Fotoflo API; '' means the page's own server.")
    api_token = param.String(
        default="", doc="The notebook server's token, sent as 'Authorization: Bearer' on API requests; '' for none."
    )
    page_origin = param.String(default="", doc="Origin of the page showing the gallery, as the browser reports it.")
    allowed_origin = param.String(
        default="", doc="`page_origin` once the notebook server answers it (the browser waits for it to start)."
    )
    project = param.String(default="default", doc="Project whose images are shown.")
    mode: Any = param.Selector(
        default="grid",
        objects=list(MODES),
        doc="'grid' (Single mode: browse), 'collection' (select and curate) or 'wall' (display).",
    )
    page_size = param.Integer(
        default=PAGE_SIZE, bounds=(1, 500), doc="Images fetched per page while scrolling; the wall shows one page."
    )
    heartbeat_s = param.Number(
        default=PAGE_HEARTBEAT_S,
        bounds=(0.5, 30),
        doc="Seconds between the heartbeats the page asks of the server; Offline after 2.5 missed (4 s at least).",
    )
    state: Any = param.Selector(
        default="connecting",
        objects=["connecting", "live", "offline"],
        doc="Connection state of the event stream, reported by the browser.",
    )
    selected = param.String(default=None, allow_None=True, doc="Id of the image open in the lightbox, if any.")
    selection = param.List(default=[], item_type=str, doc="Ids selected in the Collection mode pool, in pool order.")
    collection = param.String(default=None, allow_None=True, doc="Id of the collection open in the side panel.")
    sync_url = param.Boolean(default=False, doc="Keep the page URL's ?mode= in step with the mode switch.")
    min_rating = param.Integer(
        default=None, allow_None=True, bounds=(0, 5), doc="The rating filter: rated at least this; None (or 0): any."
    )
    flag: Any = param.Selector(
        default=None, objects=[None, *FLAGS], doc="The flag filter ('none': unflagged); None: any."
    )
    label: Any = param.Selector(
        default=None, objects=[None, *LABELS], doc="The colour label filter ('none': no label); None: any."
    )
    lang: Any = param.Selector(
        default=i18n.DEFAULT, objects=list(i18n.LANGUAGES), doc="The page's language; the switch in the page sets it."
    )
    catalogue = param.Dict(
        default={}, doc="The strings of `lang` (its catalogue, dashboard/i18n.py), sent with the page."
    )
    languages = param.List(default=[], doc="[code, name] of every language the switch offers.")
    download: Any = param.Selector(
        default="original", objects=list(DOWNLOADS), doc="What the page offers to download (a share link's rule)."
    )
    wall_qr = param.String(default="", doc="A `data:` URL of the QR code the wall shows in a corner; '' for none.")
    person = param.Dict(
        default=None,
        allow_None=True,
        doc="Who the page acts as, `{'name', 'role'}` (favourites.js: the hearts, the counts, 'Send my picks'); "
        "None: the local user of a server without sign-in (an owner).",
    )

    def __init__(self, **params: Any) -> None:
        params.setdefault("catalogue", i18n.catalogue(params.get("lang", i18n.DEFAULT)))
        params.setdefault("languages", [[code, i18n.t(code, "language.name")] for code in i18n.LANGUAGES])
        super().__init__(**params)
        # The switch picked another language: its strings go to the page, which starts again with them.
        self.param.watch(lambda e: setattr(self, "catalogue", i18n.catalogue(e.new)), "lang")

    # main.js and the modules it imports (one object per concern, see its header), joined: see esm_bundle.
    _esm = esm_bundle(ASSETS / "main.js")
    _stylesheets = [(ASSETS / "gallery.css").read_text()]


class Gallery(Viewer):
    """The live gallery of one project, newest first.

    Its connection is given explicitly, one of: `app`, the `App` of the server the page is served by
    (`app_for_session` passes it); `data`, a data directory whose API server then runs in this process;
    or `api_url`, a running Fotoflo server. With `app` or `data`, `ingest()` adds images that appear at
    once; a remote server takes images by upload, hot folder or `fotoflo sync`.

    Its params reach the page after construction (another project or mode, a filter, a height), and
    what the user picks in the page (the mode, the filters, the selection) sets them: bind to
    `gallery.param.min_rating` to follow the page's rating filter. The filters are this gallery's own.
    `gallery.live` is the project's `LiveImages`, shared by every session and cell of the process:
    `live=` gives it, else it is made (or found) when first read. `token=`: the API token for a
    server with sign-in (`api_url`), used from Python only (the live model, saving collections); it is
    no param, so it reaches neither a repr nor the page. `person=`: who a served page's session is
    (`{"name", "role"}`, `page_person`), for its favourites; None: the local user (no sign-in).
    """

    project = param.String(default="default", doc="Project whose images are shown.")
    mode: Any = param.Selector(
        default="grid", objects=list(MODES), doc="'grid' to browse, 'collection' to curate, 'wall' for a display."
    )
    app = param.Parameter(
        default=None, doc="The `App` of the server this page is served by (its API is the page's own server)."
    )
    api_url = param.String(default="", doc="Base URL of a Fotoflo server; '' means the page's own server.")
    data = param.Path(default=None, check_exists=False, doc="Data directory to serve from this process.")
    connected = param.Boolean(
        default=False, constant=True, doc="True while the page's own event stream is connected (its Live badge)."
    )
    min_rating = param.Integer(
        default=None,
        allow_None=True,
        bounds=(0, 5),
        doc="The page's rating filter: images rated at least this; None (or 0): any. Set in the page or here.",
    )
    flag: Any = param.Selector(
        default=None,
        objects=[None, *FLAGS],
        doc="The page's flag filter: 'pick', 'reject' or 'none' (unflagged); None: any. Set in the page or here.",
    )
    label: Any = param.Selector(
        default=None,
        objects=[None, *LABELS],
        doc="The page's colour label filter ('none': no label); None: any. Set in the page or here.",
    )
    selected = param.String(default=None, allow_None=True, doc="Id of the image open in the lightbox, if any.")
    selection = param.List(default=[], item_type=str, doc="Ids selected in the Collection mode pool, in pool order.")
    collection = param.String(default=None, allow_None=True, doc="Id of the collection open in Collection mode.")
    height = param.Integer(
        default=None,
        allow_None=True,
        bounds=(200, None),
        doc="Height in pixels (a notebook cell); None fills the page.",
    )
    heartbeat_s = param.Number(
        default=PAGE_HEARTBEAT_S,
        bounds=(0.5, 30),
        doc="Seconds between the heartbeats the page asks of the server (a served page: `--heartbeat-s`, at most 1.5).",
    )
    lang: Any = param.Selector(
        default=i18n.DEFAULT,
        objects=list(i18n.LANGUAGES),
        doc="The page's language ('en', 'de'); a served page's follows Accept-Language and the page's switch.",
    )
    download: Any = param.Selector(
        default="original",
        objects=list(DOWNLOADS),
        doc="What the page offers to download: 'original', 'preview' or 'none' (a share link's rule, "
        "which the server enforces whatever the page offers).",
    )
    wall_qr = param.String(
        default="",
        doc="A `data:` URL of a share link's QR code, shown in a corner of the wall ('' for none): see "
        "`dashboard.http.pages.wall_qr`.",
    )

    def __init__(
        self,
        *,
        live: LiveImages | None = None,
        sync_url: bool = False,
        token: str | None = None,
        person: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self._token = token
        self._given_live: LiveImages | None = None
        self.live = live
        self._made_live: LiveImages | None = None  # the shared model `live` was read as, when none was given
        self._background: Any = None
        if not self.api_url and self.data is not None:
            from dashboard.embedded import background_server

            self._background = background_server(Path(self.data), self.project)
            self.api_url = self._background.url
            if "heartbeat_s" not in params:
                self.heartbeat_s = page_heartbeat_s(self._background.app.settings.heartbeat_s)
        self._embedded = self._background or _embedded_at(self.api_url)
        self._view = LiveGallery(
            api_base=self.api_url,
            api_token=self._embedded.token if self._embedded is not None else "",
            project=self.project,
            mode=self.mode,
            page_size=_page_size(self.mode),
            heartbeat_s=self.heartbeat_s,
            sync_url=sync_url,
            person=person,
            lang=self.lang,
            download=self.download,
            wall_qr=self.wall_qr,
            **{name: getattr(self, name) for name in FILTERS},
            **self._sizing(),
        )
        self._view.param.watch(self._on_state, "state")
        # The browser reports what the user did; setting these here changes the page.
        for name in ("selected", "selection", "collection", "mode", "lang", *FILTERS):
            self._view.param.watch(lambda e: setattr(self, e.name, e.new), name)
        self.param.watch(
            lambda *events: self._view.param.update({e.name: e.new for e in events}),
            ["project", "heartbeat_s", "lang", *FILTERS],
        )
        # The wall pages by what it shows: the page starts again as or from a wall (see main.js).
        self.param.watch(lambda e: self._view.param.update(mode=e.new, page_size=_page_size(e.new)), "mode")
        # A new server or size after construction reaches the browser too (the page starts again on it).
        self.param.watch(self._on_api_url, "api_url")
        self.param.watch(lambda e: self._view.param.update(**self._sizing()), "height")
        self._view.param.watch(self._on_page_origin, "page_origin")
        # The shared model read for the old connection or project is not this gallery's any more.
        self.param.watch(self._forget_live, ["project", "app", "api_url"])

    def _sizing(self) -> dict[str, Any]:
        if self.height:
            return {"height": self.height, "min_height": None, "sizing_mode": "stretch_width"}
        return {"height": None, "sizing_mode": "stretch_both", "min_height": 480}

    @property
    def live(self) -> LiveImages | None:
        """The project's `LiveImages`: `count`, `latest`, `images`, … to bind to (`gallery.live.param.count`).

        The one given as `live=`, else the shared model of this gallery's connection and project, made
        (or found in the process's registry) when first read, and again after `project`, `app` or
        `api_url` change: in process for `app`, `data` or a notebook server of this process (the app's
        feed hub), else over `api_url`'s event stream. In a served Panel session a remote model comes
        back before its first page is in (it fills in), so no page waits on another server. None when
        the gallery has no connection in Python (`api_url` '' and no `app`). It is shared: its own
        filters are everyone's, so the page's filters are the gallery's params, not the model's.
        """
        return self._given_live if self._given_live is not None else self._shared_live()

    @live.setter
    def live(self, live: LiveImages | None) -> None:
        if live is not None and not isinstance(live, LiveImages):
            raise TypeError(f"live takes a LiveImages, not {type(live).__name__}")
        self._given_live = live

    def _shared_live(self) -> LiveImages | None:
        if self._made_live is not None and not self._made_live.closed:
            return self._made_live
        from dashboard.live import live_images, live_remote
        from dashboard.live.sessions import served_session

        app = self.app if self.app is not None else getattr(self._embedded, "app", None)
        if app is not None:
            self._made_live = live_images(app, self.project)
        elif self.api_url and served_session() is not None:
            self._made_live = live_remote(self.api_url, self.project, token=self._token, wait_s=0)
        elif self.api_url:
            self._made_live = live_remote(self.api_url, self.project, token=self._token)
        return self._made_live

    def _forget_live(self, *_: param.parameterized.Event) -> None:
        self._made_live = None

    def _on_api_url(self, event: param.parameterized.Event) -> None:
        self._embedded = _embedded_at(event.new)
        origin = self._view.page_origin
        self._view.param.update(
            api_base=event.new,
            api_token=self._embedded.token if self._embedded is not None else "",
            allowed_origin=origin if self._allowed(origin) else "",
        )

    def _on_page_origin(self, event: param.parameterized.Event) -> None:
        if self._allowed(event.new):
            self._view.allowed_origin = event.new

    def _allowed(self, origin: str) -> bool:
        """Whether the notebook server this gallery uses (if any) now answers the page at `origin`."""
        # The origin comes over the page's own connection (the notebook's comm, or a Panel server's
        # websocket): only a page that shows this gallery can name it.
        if not origin or self._embedded is None:
            return False
        try:
            self._embedded.allow_origin(origin)
        except ValueError as exc:
            log.warning("the gallery's page cannot use the notebook server: %s", exc)
            return False
        return True

    def _on_state(self, event: param.parameterized.Event) -> None:
        with param.edit_constant(self):
            self.connected = event.new == "live"

    def ingest(self, path: str | Path) -> Any:
        """Ingest a file into this gallery's project through the one ingest door."""
        return self.local_app().ingest_path(Path(path), self.project)

    def local_app(self) -> Any:
        """The `App` this view reaches in this process: `app`, or the one its `data` directory runs.

        A view of a remote server (`api_url` only) has none: `RuntimeError` says what to do instead.
        """
        if self.app is not None:
            return self.app
        if self._background is not None:
            return self._background.app
        raise RuntimeError(
            f"this view shows the server at {self.api_url or 'its page'}, which runs elsewhere: ingest there "
            "(upload, hot folder or `fotoflo sync`), or give the view `data=` or `app=`"
        )

    def __panel__(self) -> LiveGallery:
        return self._view


def _page_size(mode: str) -> int:
    """Images the page fetches at a time in `mode`: the wall's one page is exactly what it shows."""
    return WALL_STRIP + 1 if mode == "wall" else PAGE_SIZE


def page_heartbeat_s(server_heartbeat_s: float) -> float:
    """The heartbeat a page asks of a server set to `--heartbeat-s` (see PAGE_HEARTBEAT_S)."""
    return max(0.5, min(server_heartbeat_s, PAGE_HEARTBEAT_S))


def _embedded_at(url: str) -> Any:
    """The notebook server of this process at `url`, if it is one (its galleries carry its token)."""
    if not url.startswith("http://127.0.0.1:"):
        return None
    from dashboard.embedded import running

    return running(url)
