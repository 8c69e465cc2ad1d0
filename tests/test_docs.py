"""Docs coverage, as datasette does it: every endpoint, change kind, CLI option and env var is in README.md."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, cast

import pytest

from dashboard import api
from dashboard.cli import build_parser
from dashboard.config import ENV, SYNC_ENV
from dashboard.events import CHANGE_KINDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

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
    for pattern, handler, _ in api.routes(cast(Any, None)):
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


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


@pytest.mark.parametrize(("method", "path"), endpoints(), ids=lambda v: v or "any")
def test_every_endpoint_is_documented(method: str, path: str) -> None:
    term = f"{method} {path}" if method else path
    assert mentions(README, term), f"README.md does not document `{term}`"


def test_no_endpoint_is_documented_that_does_not_exist() -> None:
    documented = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)", README))
    assert documented, "README.md documents no endpoint as `METHOD /path`"
    assert documented <= set(endpoints()), f"not served: {sorted(documented - set(endpoints()))}"


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_every_change_kind_is_documented(kind: str) -> None:
    assert f"`{kind}`" in section("Change feed")


@pytest.mark.parametrize(
    ("command", "option"),
    [("fotoflo", o) for o in options(build_parser())]
    + [(name, o) for name, parser in subcommands().items() for o in options(parser)],
)
def test_every_cli_option_is_documented(command: str, option: str) -> None:
    assert mentions(README, option), f"README.md does not document `{command} {option}`"


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_subcommand_has_a_section(command: str) -> None:
    assert f"### `fotoflo {command}`" in README


ENV_VARS = sorted({var for var, _ in [*ENV.values(), *SYNC_ENV.values()]})


@pytest.mark.parametrize("var", ENV_VARS)
def test_every_env_var_is_documented(var: str) -> None:
    assert mentions(README, var), f"README.md does not document {var}"


def test_no_env_var_is_documented_that_does_not_exist() -> None:
    known = set(ENV_VARS)
    assert set(re.findall(r"FOTOFLO_[A-Z0-9_]+", README)) <= known


def test_quick_start_is_exactly_the_two_commands() -> None:
    blocks = re.findall(r"^```\w*\n(.*?)^```", section("Quick start"), re.MULTILINE | re.DOTALL)
    commands = [line.strip() for block in blocks for line in block.splitlines()]
    assert [c for c in commands if c and not c.startswith("#")] == ["./scripts/serve", "./scripts/test"]


@pytest.mark.parametrize("script", ["scripts/serve", "scripts/test", "scripts/bench", ".ci/run"])
def test_scripts_are_executable(script: str) -> None:
    path = ROOT / script
    assert path.is_file() and path.stat().st_mode & 0o111, f"{script} is missing or not executable"
    assert path.read_text().startswith("#!/usr/bin/env bash\n")


def test_ci_runs_the_documented_test_command() -> None:
    lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert "bash scripts/test" in lines, ".ci/run must run the same `scripts/test` the README gives"
