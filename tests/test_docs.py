"""Docs coverage, as datasette does it: every endpoint, change kind, CLI option, env var and error code is in docs/.

Each item is looked for on the page that is its reference (the endpoints in docs/http-api.md, the change kinds
in docs/change-feed.md, `fotoflo sync` in docs/sync.md, the other commands in docs/usage.md); README.md keeps
the quick start, and its links into docs/ must land on a page and a heading that exist.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, cast

import pytest
from markdown.extensions.toc import slugify

from dashboard.cli import build_parser
from dashboard.config import ENV, SYNC_ENV
from dashboard.events import CHANGE_KINDS
from dashboard.http.routes import routes
from dashboard.ingest import IngestError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
PAGES = {path.name: path.read_text() for path in sorted(DOCS.glob("*.md"))}
# The reference pages; not security.md (the threat model, which names test hooks) nor benchmarks.md (generated).
REFERENCE = {name: text for name, text in PAGES.items() if name not in ("security.md", "benchmarks.md")}
ALL_DOCS = "\n".join(PAGES.values())
HTTP_API = PAGES["http-api.md"]
USAGE = PAGES["usage.md"]
SYNC = PAGES["sync.md"]
COMMAND_PAGES = {"sync": "sync.md"}  # the page of each subcommand; the others, and `fotoflo` itself: usage.md

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def documented_path(pattern: str) -> str:
    """`/api/projects/(?P<project>[^/]+)/export\\.csv/?` → `/api/projects/{project}/export.csv`."""
    path = pattern.removesuffix("/?")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)  # a named URL group is its placeholder
    path = path.replace(r"\.", ".").replace(".*", "*")
    assert "(" not in path, f"name the URL groups of {pattern!r}: (?P<name>...)"
    return path


def endpoints() -> list[tuple[str, str]]:
    """(method, documented path) of every route; method "" for catch-alls that answer any method."""
    out = []
    for pattern, handler, _ in routes(cast(Any, None)):
        methods = [m.upper() for m in HTTP_METHODS if m in vars(handler)]
        out += [(m, documented_path(pattern)) for m in methods or [""]]
    return out


def mentions(text: str, term: str) -> bool:
    """`term` stands on its own in `text`: not as the start of a longer path, option or name."""
    return re.search(r"(?<![\w/-])" + re.escape(term) + r"(?![\w/{-])", text) is not None


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def section(title: str, text: str = README, name: str = "README.md") -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"{name} has no '## {title}' section"
    return match.group(1)


@pytest.mark.parametrize(("method", "path"), endpoints(), ids=lambda v: v or "any")
def test_every_endpoint_is_documented(method: str, path: str) -> None:
    term = f"{method} {path}" if method else path
    assert mentions(HTTP_API, term), f"docs/http-api.md does not document `{term}`"


@pytest.mark.parametrize("name", ["README.md", *REFERENCE])
def test_no_endpoint_is_documented_that_does_not_exist(name: str) -> None:
    text = README if name == "README.md" else REFERENCE[name]
    documented = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)", text))
    assert documented <= set(endpoints()), f"{name}: not served: {sorted(documented - set(endpoints()))}"


def test_the_http_api_page_documents_endpoints() -> None:
    assert re.search(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)", HTTP_API), "docs/http-api.md documents none"


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_every_change_kind_is_documented(kind: str) -> None:
    assert f"`{kind}`" in PAGES["change-feed.md"], f"docs/change-feed.md does not document `{kind}`"


def api_error_codes() -> list[tuple[str, str]]:
    """(status, code) of every error the server answers with a literal status and code, in any module."""
    found = set()
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        found |= set(re.findall(r"\b([45]\d\d),\s*\"([a-z][a-z_]*)\"", path.read_text()))
    return sorted(found)


def test_error_codes_are_found() -> None:
    codes = dict(api_error_codes())
    assert codes.get("404") and codes.get("401"), "the search for error codes finds none: has their form changed?"


@pytest.mark.parametrize(("status", "code"), api_error_codes())
def test_every_error_code_is_documented(status: str, code: str) -> None:
    assert re.search(rf"`({status} )?{code}`", ALL_DOCS), f"docs/ does not document `{status} {code}`"


def ingest_error_codes() -> list[str]:
    classes, todo = [], [IngestError]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo += cls.__subclasses__()
    return sorted({cls.code for cls in classes})


@pytest.mark.parametrize("code", ingest_error_codes())
def test_every_ingest_error_code_is_documented(code: str) -> None:
    assert f"| `{code}` |" in section("Ingest rules", USAGE, "docs/usage.md"), f"the ingest rules lack `{code}`"


@pytest.mark.parametrize(
    ("command", "option"),
    [("fotoflo", o) for o in options(build_parser())]
    + [(name, o) for name, parser in subcommands().items() for o in options(parser)],
)
def test_every_cli_option_is_documented(command: str, option: str) -> None:
    page = COMMAND_PAGES.get(command, "usage.md")
    assert mentions(PAGES[page], option), f"docs/{page} does not document `{command} {option}`"


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_subcommand_has_a_section(command: str) -> None:
    page = COMMAND_PAGES.get(command, "usage.md")
    assert re.search(rf"^##+ `fotoflo {command}`$", PAGES[page], re.MULTILINE), f"docs/{page} has no section"


ENV_VARS = sorted({var for var, _ in [*ENV.values(), *SYNC_ENV.values()]})


@pytest.mark.parametrize(
    ("page", "var"),
    [("usage.md", var) for var, _ in ENV.values()] + [("sync.md", var) for var, _ in SYNC_ENV.values()],
)
def test_every_env_var_is_documented(page: str, var: str) -> None:
    assert mentions(PAGES[page], var), f"docs/{page} does not document {var}"


@pytest.mark.parametrize("name", ["README.md", *REFERENCE])
def test_no_env_var_is_documented_that_does_not_exist(name: str) -> None:
    text = README if name == "README.md" else REFERENCE[name]
    assert set(re.findall(r"FOTOFLO_[A-Z0-9_]+", text)) <= set(ENV_VARS)


def test_quick_start_is_exactly_the_two_commands() -> None:
    blocks = re.findall(r"^```\w*\n(.*?)^```", section("Quick start"), re.MULTILINE | re.DOTALL)
    commands = [line.strip() for block in blocks for line in block.splitlines()]
    assert [c for c in commands if c and not c.startswith("#")] == ["./scripts/serve", "./scripts/test"]


def anchors(text: str) -> set[str]:
    """The ids MkDocs gives the headings of a page (its `toc` extension's slugs, code spans as plain text)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return {slugify(title.replace("`", ""), "-") for title in re.findall(r"^#+ (.*)$", text, re.MULTILINE)}


def readme_links() -> list[str]:
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    return sorted({link for link in links if not re.match(r"[a-z]+:", link)})


def test_readme_links_into_docs() -> None:
    linked = {link.split("#")[0] for link in readme_links()}
    assert {f"docs/{name}" for name in PAGES} <= linked, "README.md must link every page of docs/"


@pytest.mark.parametrize("link", readme_links())
def test_readme_links_resolve(link: str) -> None:
    path, _, anchor = link.partition("#")
    assert (ROOT / path).exists(), f"README.md links to {path}, which does not exist"
    if anchor:
        assert anchor in anchors((ROOT / path).read_text()), f"README.md links to {link}: no such heading"


def test_every_page_is_in_the_site() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    assert [name for name in PAGES if f": {name}\n" not in nav] == [], "mkdocs.yml's nav lacks these pages"


@pytest.mark.parametrize("script", ["scripts/serve", "scripts/test", "scripts/bench", ".ci/run"])
def test_scripts_are_executable(script: str) -> None:
    path = ROOT / script
    assert path.is_file() and path.stat().st_mode & 0o111, f"{script} is missing or not executable"
    assert path.read_text().startswith("#!/usr/bin/env bash\n")


def test_ci_runs_the_documented_test_command() -> None:
    lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert "bash scripts/test" in lines, ".ci/run must run the same `scripts/test` the README gives"
