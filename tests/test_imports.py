"""What importing a module loads: light modules load no imaging library, and `dashboard/` has no import cycles.

`fotoflo sync` runs on a photographer's laptop: it must start without Pillow, rawpy or pillow_heif
(and their native libraries), so the sync client, the config and the watcher import only light
modules (`dashboard.imaging.errors`, `.formats`, `.analysis`). Each check runs a fresh interpreter:
this test process has long since loaded Pillow.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.images import jpeg_bytes
from tests.support.servers import Server

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dashboard"
HEAVY = ("PIL", "rawpy", "pillow_heif")
LIGHT = (
    "dashboard.sync.cli",
    "dashboard.sync",
    "dashboard.config",
    "dashboard.watcher",
    "dashboard.imaging.errors",
    "dashboard.imaging.formats",
    "dashboard.imaging.analysis",
    "dashboard.imaging.sizes",
    # The server's process too: it hands every decode to a worker process (`dashboard.decoders`).
    "dashboard.ingest",
    "dashboard.decoders",
    "dashboard.previews",
)


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("module", LIGHT)
def test_a_light_module_loads_no_imaging_library(module: str) -> None:
    probe = f"import json, sys, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = _python("-c", probe)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], f"importing {module} loads {result.stdout.strip()}"


def _fotoflo_imports(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `fotoflo ARGS`; its result and every module it imported (-X importtime lists them on stderr)."""
    result = _python("-X", "importtime", "-m", "dashboard.cli", *args)
    lines = result.stderr.splitlines()
    return result, {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}


def test_fotoflo_sync_help_loads_no_imaging_library() -> None:
    result, imported = _fotoflo_imports("sync", "--help")
    assert result.returncode == 0, result.stderr
    assert "--server" in result.stdout
    assert "dashboard.config" in imported  # the listing works
    heavy = sorted(name for name in imported if name.split(".")[0] in HEAVY)
    assert heavy == [], f"fotoflo sync --help imports {heavy}"


def test_fotoflo_sync_uploads_a_photo_without_loading_an_imaging_library(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    photo = jpeg_bytes((320, 240), seed=7)
    (folder / "IMG_0001.JPG").write_bytes(photo)
    state = tmp_path / "state"
    args = ("sync", str(folder), "--server", server.url, "--project", server.project, "--state", str(state), "--once")
    result, imported = _fotoflo_imports(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dashboard.sync.cli" in imported
    listed = httpx.get(server.api("/images"), timeout=10).json()["images"]
    assert [image["sha256"] for image in listed] == [hashlib.sha256(photo).hexdigest()]
    heavy = sorted(name for name in imported if name.split(".")[0] in HEAVY)
    assert heavy == [], f"fotoflo sync imports {heavy}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph() -> dict[str, set[str]]:
    """Module → the `dashboard` modules it imports, at top level or inside functions (not under TYPE_CHECKING).

    `from a.b import c` is an edge to the module `a.b.c` if there is one, else to `a.b` (names from the
    package). The package a submodule's import runs first is not an edge: a package's `__init__` may
    re-export its submodules (`dashboard.sync`), as long as none of them imports names from it back.
    """
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        nodes = [ast.parse(path.read_text(), str(path))]
        while nodes:
            node = nodes.pop()
            if isinstance(node, ast.If) and _is_type_checking(node):
                nodes.extend(node.orelse)
                continue
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*kept, base]).strip(".")
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else base)
            nodes.extend(ast.iter_child_nodes(node))
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_sees_lazy_imports_and_packages() -> None:
    graph = import_graph()
    assert "dashboard.decoders" in graph["dashboard.ingest"]  # imported inside `Ingestor.__init__`
    assert "dashboard.store" in graph["dashboard.store.sql"]  # `from dashboard.store import ...`
    assert "dashboard.imaging.raw_walk" in graph["dashboard.imaging.raw"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere_in_the_package() -> None:
    found = cycles(import_graph())
    assert found == [], "an import cycle; each is imported by the other, directly or through the modules listed"
