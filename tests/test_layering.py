"""Layering: core never imports a front end; the web app mounts on the API through a2wsgi."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "core"
FRONT_ENDS = ("dash_app", "hicli")


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_never_imports_a_front_end(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        bad = [n for n in names if n.split(".")[0] in FRONT_ENDS]
        assert not bad, f"{path}:{node.lineno} imports {bad}"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_api_alone_and_with_the_web_app_mounted(tmp_path):
    from fastapi.testclient import TestClient

    from dash_app import mount_web
    from hisci import Registry, Settings
    from hisci.api import create_app

    settings = Settings(data_dir=tmp_path, entry_points=False)
    registry = Registry.discover(settings)
    api = create_app(settings, registry, with_reaper=False)
    with TestClient(api) as client:
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/").status_code == 404          # no web app unless a front end mounts it
    assert mount_web(api, settings, registry)
    with TestClient(api) as client:
        page = client.get("/")
        assert page.status_code == 200 and "_dash-config" in page.text
        assert client.get("/api/v1/health").status_code == 200 and "text/html" not in client.get(
            "/api/v1/health").headers["content-type"]


#: ``hicli``, a long option (``--set``) or a short one (``-o PATH``) in an error's text
CLI_WORDS = re.compile(r"\bhicli\b|(?<![\w-])--[a-z][a-z-]+|(?<![\w-])-[a-zA-Z](?= )")


def _error_texts(tree: ast.AST):
    """The string parts of every error core raises: ``hint=``/``summary=`` arguments and the
    message of ``Problem(...)`` and ``...Error(...)`` calls (f-strings included)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        parts = [kw.value for kw in node.keywords if kw.arg in ("hint", "summary")]
        if name == "Problem" or name.endswith("Error"):
            parts += node.args[:1]
        for part in parts:
            for leaf in ast.walk(part):
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                    yield node.lineno, leaf.value


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_error_hints_name_no_cli_flag(path):
    """Core says what to change; each front end adds its own flags (hicli/errors.py: cli_hints)."""
    bad = [f"{path.name}:{line}: {text!r}" for line, text in _error_texts(ast.parse(path.read_text("utf-8")))
           if CLI_WORDS.search(text)]
    assert not bad, bad


def test_the_hint_check_catches_a_flag():
    tree = ast.parse('raise InputError("x", hint="pass --input data=PATH")\n'
                     'Problem(f"bad {x}: use -o DIR")\nHisciError("ok", hint="run hicli list")')
    assert [t for _, t in _error_texts(tree) if CLI_WORDS.search(t)] == [
        "pass --input data=PATH", ": use -o DIR", "run hicli list"]
