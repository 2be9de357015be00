"""``hisci.testing``: run a plugin's examples and compare the outputs with stored expectations.

Like ``planemo test`` for Galaxy tools. The cases come from ``tests/examples.json`` (several
named cases, each an exampleData entry plus parameter overrides and inputs) or, without
that file, from every ``exampleData`` entry. The expectations live beside it::

    tests/expected.json             status and result.json of each case, the kind of every
                                    output file, and the tolerances (editable, kept by --update)
    tests/expected/<case>/<file>    reference copies of the output files

Numbers (in result.json, JSON outputs and figures) and arrays (``.npy``, ``.h5``) match
when ``|actual - expected| <= abs + rel * |expected|``; text files must match exactly;
figures are compared by their data (``hisci.figures.load_figure``), never by pixels.
``tests`` is the project's ``tests/`` folder for a pip project (pyproject.toml beside the
plugin folder), else the plugin folder's own ``tests/``.

From pytest::

    from hisci.testing import check_plugin

    def test_examples(tmp_path):
        check_plugin(Path(__file__).parents[1], workdir=tmp_path)   # AssertionError with the diff
"""

from __future__ import annotations

import difflib
import json
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HisciError, InputError, did_you_mean
from .figures import load_figure
from .plugin import Plugin, load_plugin
from .runner import RunResult, run_plugin

__all__ = ["CaseReport", "TestCase", "TestReport", "Tolerance", "check_plugin", "compare_file",
           "compare_values", "find_plugin_folder", "load_cases", "run_tests", "tests_folder"]

EXPECTATIONS_VERSION = 1
DEFAULT_REL, DEFAULT_ABS = 1e-6, 1e-9
#: Files every run writes; they hold times, hosts and paths, so they are never compared.
BOOKKEEPING = {"job.json", "log.txt", "task.status.json", "result.json"}
TEXT_SUFFIXES = {".txt", ".csv", ".tsv", ".dat", ".xy", ".md", ".log", ".xml", ".yaml", ".yml", ".cif"}
KINDS = ("figure", "json", "array", "hdf5", "text", "exists", "skip")


@dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= abs + rel * |expected|`` (numpy.isclose's rule)."""

    rel: float = DEFAULT_REL
    abs: float = DEFAULT_ABS

    def limit(self, expected: Any) -> Any:
        return self.abs + self.rel * np.abs(expected)

    def __str__(self) -> str:
        return f"rel {self.rel:g}, abs {self.abs:g}"


@dataclass
class TestCase:
    """One example to run: an exampleData entry, parameter overrides and input files."""

    name: str
    example: int | None = 0
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    expect_failure: bool = False

    __test__ = False  # not a pytest class


@dataclass
class CaseReport:
    name: str
    status: str
    output_dir: Path
    differences: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return not self.differences


#: How to record new expectations, said neutrally (front ends pass their own ``update_hint``).
UPDATE_HINT = "update the expectations from this run (run_tests(..., update=True))"


@dataclass
class TestReport:
    plugin_id: str
    expectations: Path
    cases: list[CaseReport]
    updated: bool = False
    #: how to record new expectations, in the caller's terms (hicli names its command here)
    update_hint: str = ""

    __test__ = False

    @property
    def ok(self) -> bool:
        return all(case.ok for case in self.cases)

    @property
    def crashed(self) -> bool:
        """True when a case that should succeed failed while running (hicli exit code 2)."""
        return any(c.status in ("failed", "cancelled") for c in self.cases if not c.ok)

    def format(self) -> str:
        """A readable report: one line per case, the differences indented under it."""
        failed = [c for c in self.cases if not c.ok]
        if self.updated:
            head = f"{self.plugin_id}: recorded {len(self.cases) - len(failed)} of {len(self.cases)} case(s)"
        else:
            head = f"{self.plugin_id}: {len(self.cases) - len(failed)} of {len(self.cases)} case(s) match"
        lines = [("ok      " if not failed else "FAILED  ") + f"{head} ({self.expectations})"]
        for case in self.cases:
            lines.append(f"  {'ok  ' if case.ok else 'FAIL'} {case.name} ({case.status})")
            lines += [f"      {d}" for d in _indent_lines(case.differences)]
            if not case.ok:
                lines.append(f"      outputs: {case.output_dir}")
        if any(c.status == "succeeded" for c in failed) and not self.updated:
            lines.append(f"  if the new outputs are right, record them: {self.update_hint or UPDATE_HINT}")
        return "\n".join(lines)


def _indent_lines(differences: list[str]) -> Iterator[str]:
    for diff in differences:
        first, *rest = diff.split("\n")
        yield first
        yield from (f"    {line}" for line in rest)


# --------------------------------------------------------------------------- locating


def find_plugin_folder(path: Path | str) -> Path:
    """The plugin folder for ``path``: the folder itself (it holds meta.json), or the one
    plugin folder inside a project folder (as ``hicli new`` makes it)."""
    path = Path(path).resolve()
    if path.is_file() and path.name in ("meta.json", "data.json", "ui.json", "pyproject.toml"):
        path = path.parent
    if (path / "meta.json").is_file():
        return path
    if not path.is_dir():
        raise InputError(f"{path}: no such folder", file=str(path), hint="give a plugin or project folder")
    found = sorted(p for p in path.iterdir() if (p / "meta.json").is_file() and p.name != "build")
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(f"{path}: not a plugin folder (no meta.json here or in a subfolder)", file=str(path),
                         hint="give the folder that holds meta.json, data.json and ui.json")
    raise InputError(f"{path}: holds several plugins ({', '.join(p.name for p in found)}); give one",
                     file=str(path), allowed=[p.name for p in found])


def tests_folder(plugin_folder: Path) -> Path:
    """``<project>/tests`` for a pip project, else ``<plugin>/tests``."""
    project = plugin_folder.parent
    if (project / "pyproject.toml").is_file() and (project / "tests").is_dir():
        return project / "tests"
    return plugin_folder / "tests"


def load_cases(plugin: Plugin, tests: Path | None = None) -> list[TestCase]:
    """The cases of ``tests/examples.json``, else one per exampleData entry."""
    tests = tests or tests_folder(plugin.folder)
    listing = tests / "examples.json"
    if listing.is_file():
        return _cases_from_file(listing, tests)
    count = len(plugin.data.examples())
    if count == 0:
        raise InputError(f"plugin '{plugin.id}' has no exampleData and no {listing}",
                         hint="add an exampleData entry to data.json or cases to tests/examples.json")
    return [TestCase("example" if count == 1 else f"example-{i}", i) for i in range(count)]


def _cases_from_file(listing: Path, tests: Path) -> list[TestCase]:
    try:
        document = json.loads(listing.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{listing}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                         file=str(listing)) from None
    entries = document.get("cases", []) if isinstance(document, dict) else document
    cases, seen = [], set()
    for i, entry in enumerate(entries):
        name = str(entry.get("name") or f"case-{i}")
        if name in seen or not name.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"{listing}: case name {name!r} is repeated or not a simple name",
                             file=str(listing), pointer=f"/cases/{i}/name",
                             hint="use letters, digits, '_' and '-', each name once")
        seen.add(name)
        inputs = {k: _resolve_input(v, tests) for k, v in (entry.get("inputs") or {}).items()}
        cases.append(TestCase(name, entry.get("example", 0), entry.get("params") or {}, inputs,
                              bool(entry.get("expect_failure", False))))
    return cases


def _resolve_input(value: Any, tests: Path) -> Any:
    """Input paths in examples.json are relative to the tests folder (or absolute)."""
    if isinstance(value, list):
        return [_resolve_input(v, tests) for v in value]
    candidate = tests / str(value)
    return str(candidate.resolve()) if candidate.exists() else str(value)


# --------------------------------------------------------------------------- running


def run_tests(path: Path | str, *, update: bool = False, workdir: Path | str | None = None,
              only: list[str] | None = None) -> TestReport:
    """Run every case of the plugin at ``path`` and compare (or, with ``update``, record).

    Raises ``PluginLoadError`` when the plugin itself is invalid. Outputs go to
    ``workdir/<case>/`` (a temporary folder when not given, removed when every case passes).
    """
    folder = find_plugin_folder(path)
    plugin = load_plugin(folder)
    if not plugin.runnable:
        plugin.load_entry()  # raises: no runtime block, with the fix as a hint
    _forget_modules(plugin)
    tests = tests_folder(folder)
    store = ExpectationStore(tests)
    cases = load_cases(plugin, tests)
    unknown = sorted(set(only or ()) - {c.name for c in cases})
    if unknown:
        raise InputError(f"unknown case(s) {', '.join(unknown)}{did_you_mean(unknown[0], [c.name for c in cases])}",
                         given=unknown, allowed=[c.name for c in cases])
    cases = [c for c in cases if not only or c.name in only]
    temporary = workdir is None
    root = Path(workdir or tempfile.mkdtemp(prefix=f"hisci-test-{plugin.id}-"))
    reports = []
    for case in cases:
        status, reason, out = _run_case(plugin, case, root / case.name)
        if update:
            reports.append(_record(store, case, status, reason, out))
        else:
            reports.append(_compare_case(store, case, status, reason, out))
    if update:
        store.save([c.name for c in cases] if not only else None)
    report = TestReport(plugin.id, store.path, reports, updated=update)
    if temporary and report.ok:
        shutil.rmtree(root, ignore_errors=True)
    return report


def check_plugin(path: Path | str, *, workdir: Path | str | None = None,
                 only: list[str] | None = None) -> TestReport:
    """:func:`run_tests` for pytest: raise ``AssertionError`` with the readable diff."""
    report = run_tests(path, workdir=workdir, only=only)
    if not report.ok:
        raise AssertionError("\n" + report.format())
    return report


def _forget_modules(plugin: Plugin) -> None:
    """Drop a folder plugin's modules from sys.modules, so edited code is imported afresh."""
    if plugin.package:
        return
    prefix = f"hisci_plugin_{plugin.id.replace('-', '_')}"
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def _run(plugin: Plugin, case: TestCase, out: Path) -> RunResult:
    """One case: a plugin through the runner, a workflow through the local workflow runner
    (its steps are found in the registry this environment discovers, with no step cache)."""
    kwargs = {"inputs": case.inputs or None, "output_dir": out, "example": case.example is not None,
              "example_index": case.example or 0}
    if plugin.is_workflow:
        from .registry import Registry
        from .workflow.local import run_workflow

        return run_workflow(plugin, case.params, registry=Registry.discover(), **kwargs)
    return run_plugin(plugin, case.params, **kwargs)


def _run_case(plugin: Plugin, case: TestCase, out: Path) -> tuple[str, str | None, Path]:
    if out.exists():
        if any(out.iterdir()) and not (out / "job.json").is_file():
            raise InputError(f"{out} exists and is not the output of an earlier run; not overwriting it",
                             file=str(out), hint="give another folder with -o")
        shutil.rmtree(out)
    try:
        result = _run(plugin, case, out)
    except HisciError as err:  # rejected before running: invalid request or missing input
        return "invalid", str(err), out
    except Exception as exc:  # noqa: BLE001 - e.g. plugin.py does not import: a failed case
        out.mkdir(parents=True, exist_ok=True)
        (out / "log.txt").write_text(traceback.format_exc(), encoding="utf-8")
        return "failed", f"{type(exc).__name__}: {exc}", out
    return result.status, result.error, out


# --------------------------------------------------------------------------- expectations


class ExpectationStore:
    """``tests/expected.json`` plus the reference files under ``tests/expected/``."""

    def __init__(self, tests: Path) -> None:
        self.tests = tests
        self.path = tests / "expected.json"
        self.files = tests / "expected"
        self.document: dict[str, Any] = {"hisci_expectations": EXPECTATIONS_VERSION,
                                         "tolerance": {"rel": DEFAULT_REL, "abs": DEFAULT_ABS},
                                         "cases": {}}
        if self.path.is_file():
            try:
                self.document.update(json.loads(self.path.read_text("utf-8")))
            except json.JSONDecodeError as exc:
                raise InputError(f"{self.path}: invalid JSON at line {exc.lineno}: {exc.msg}",
                                 file=str(self.path), hint="fix it, or delete it and record the expectations again") from None
        version = self.document.get("hisci_expectations", EXPECTATIONS_VERSION)
        if not isinstance(version, int) or version > EXPECTATIONS_VERSION:
            raise InputError(f"{self.path}: expectations format {version!r} is newer than this hisci reads "
                             f"({EXPECTATIONS_VERSION})", file=str(self.path), pointer="/hisci_expectations",
                             hint="upgrade hisci")

    def case(self, name: str) -> dict[str, Any] | None:
        return self.document["cases"].get(name)

    def tolerance(self, case: dict[str, Any], where: str) -> Tolerance | None:
        """The most specific tolerance for ``where`` (a file name plus a JSON pointer): the
        case's entry for the longest matching prefix, the case's own rel/abs, then the
        file-wide default. ``None`` when that entry is ``"skip"`` (timings, hostnames)."""
        base = {**self.document.get("tolerance", {})}
        own = case.get("tolerance", {})
        base.update({k: v for k, v in own.items() if k in ("rel", "abs")})
        keys = sorted((k for k in own if k not in ("rel", "abs") and _covers(k, where)), key=len)
        for key in keys:
            if own[key] == "skip":
                return None
            base.update(own[key])
        return Tolerance(float(base.get("rel", DEFAULT_REL)), float(base.get("abs", DEFAULT_ABS)))

    def save(self, keep_only: list[str] | None) -> None:
        if keep_only is not None:
            for stale in set(self.document["cases"]) - set(keep_only):
                del self.document["cases"][stale]
                shutil.rmtree(self.files / stale, ignore_errors=True)
        if not self.document["cases"] and not self.path.is_file():
            return  # nothing recorded: do not leave an empty expectations file behind
        self.tests.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.document, indent=2, ensure_ascii=False, default=_plain) + "\n",
                             encoding="utf-8")


def _covers(key: str, where: str) -> bool:
    """``result.json/fit`` covers ``result.json/fit/0`` but not ``result.json/fit_error``."""
    return where == key or where.startswith(key.rstrip("/") + "/")


def _record(store: ExpectationStore, case: TestCase, status: str, reason: str | None,
            out: Path) -> CaseReport:
    if status != "succeeded" and not case.expect_failure:
        return CaseReport(case.name, status, out, [f"not recorded: the run {status}: {reason}"], reason)
    old = store.case(case.name) or {}
    kinds = old.get("files", {})
    entry: dict[str, Any] = {"status": status}
    if status == "succeeded":
        entry["result"] = _read_result(out)
        entry["files"] = {rel: kinds.get(rel) if kinds.get(rel) in ("skip", "exists") else kind
                          for rel, kind in _output_kinds(out).items()}
    else:
        entry["reason"] = reason
    if old.get("tolerance"):
        entry["tolerance"] = old["tolerance"]
    target = store.files / case.name
    shutil.rmtree(target, ignore_errors=True)
    for rel, kind in entry.get("files", {}).items():
        if kind not in ("skip", "exists"):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / rel, target / rel)
    store.document["cases"][case.name] = entry
    return CaseReport(case.name, "expected-failure" if case.expect_failure else status, out)


def _read_result(out: Path) -> Any:
    path = out / "result.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def _output_kinds(out: Path) -> dict[str, str]:
    """Each output file (relative path) and how it is compared."""
    figures = set((json.loads((out / "job.json").read_text("utf-8")).get("figures") or [])
                  if (out / "job.json").is_file() else [])
    kinds = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel.startswith(".") or (path.name in BOOKKEEPING and (path.parent / "job.json").is_file()):
            continue  # a run's own records (a workflow's step folders have theirs too)
        kinds[rel] = _kind(rel, rel in figures)
    return kinds


def _kind(rel: str, is_figure: bool) -> str:
    suffix = Path(rel).suffix.lower()
    if is_figure:
        return "figure"
    if suffix == ".npy":
        return "array"
    if suffix in (".h5", ".hdf5", ".nxs"):
        return "hdf5"
    if suffix == ".json":
        return "json"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return "exists"  # images, HTML, binaries: present, not compared byte for byte


# --------------------------------------------------------------------------- comparing


def _compare_case(store: ExpectationStore, case: TestCase, status: str, reason: str | None,
                  out: Path) -> CaseReport:
    expected = store.case(case.name)
    if expected is None:
        return CaseReport(case.name, status, out, [
            (f"no expectations recorded for case '{case.name}' in {store.path}; "
            "record them (update the expectations from this run)")], reason)
    if status != expected.get("status"):
        return CaseReport(case.name, status, out, [
            f"status: expected {expected.get('status')}, got {status}" + (f": {reason}" if reason else "")
            + _log_tail(out)], reason)
    if status != "succeeded":
        return CaseReport(case.name, "expected-failure", out)
    diffs = compare_values(expected.get("result", {}), _read_result(out), "result.json",
                           lambda where: store.tolerance(expected, where))
    produced = _output_kinds(out)
    for rel, kind in expected.get("files", {}).items():
        if kind == "skip":
            continue
        if not (out / rel).is_file():
            diffs.append(f"{rel}: missing (expected a {kind} output)")
            continue
        if kind != "exists":
            diffs += compare_file(kind, store.files / case.name / rel, out / rel, rel,
                                  lambda where: store.tolerance(expected, where))
    for rel in sorted(set(produced) - set(expected.get("files", {}))):
        diffs.append(f"{rel}: new output, not in the expectations")
    return CaseReport(case.name, status, out, diffs, reason)


def _log_tail(out: Path, lines: int = 8) -> str:
    log = out / "log.txt"
    if not log.is_file():
        return ""
    tail = log.read_text("utf-8", errors="replace").rstrip().splitlines()[-lines:]
    return "\nlog.txt (last lines):\n" + "\n".join(tail)


def compare_file(kind: str, expected: Path, actual: Path, rel: str, tolerance: Any) -> list[str]:
    """Differences between a reference file and an output of the same ``kind``."""
    if not expected.is_file():
        return [f"{rel}: reference copy {expected} is missing; run with --update"]
    if kind == "text":
        return _compare_text(expected, actual, rel)
    if kind == "array":
        return compare_values(np.load(expected, allow_pickle=False), np.load(actual, allow_pickle=False),
                              rel, tolerance)
    if kind == "hdf5":
        return compare_values(_read_hdf5(expected), _read_hdf5(actual), rel, tolerance)
    if kind == "figure":
        return compare_values(_figure_data(expected), _figure_data(actual), rel, tolerance)
    if kind == "json":
        return compare_values(json.loads(expected.read_text("utf-8")), json.loads(actual.read_text("utf-8")),
                              rel, tolerance)
    return [f"{rel}: unknown comparison kind {kind!r}; use one of {', '.join(KINDS)}"]


def _compare_text(expected: Path, actual: Path, rel: str, context: int = 20) -> list[str]:
    old = expected.read_text("utf-8", errors="replace").splitlines()
    new = actual.read_text("utf-8", errors="replace").splitlines()
    if old == new:
        return []
    diff = list(difflib.unified_diff(old, new, "expected/" + rel, "actual/" + rel, lineterm="", n=1))
    more = [f"... {len(diff) - context} more diff lines"] if len(diff) > context else []
    return [f"{rel}: text differs\n" + "\n".join(diff[:context] + more)]


def _figure_data(path: Path) -> dict[str, Any]:
    """A figure's traces and layout, without the theme (plotly's template)."""
    figure = load_figure(path)
    layout = {k: v for k, v in (figure.get("layout") or {}).items() if k != "template"}
    return {"data": figure.get("data", []), "layout": layout}


def _read_hdf5(path: Path) -> dict[str, Any]:
    """Datasets as nested dicts by group (``/entry/signal``); attributes as ``name@attr``."""
    import h5py

    tree: dict[str, Any] = {}

    def visit(name: str, node: Any) -> None:
        *groups, leaf = name.split("/")
        parent = tree
        for group in groups:
            parent = parent.setdefault(group, {})
        if isinstance(node, h5py.Dataset):
            parent[leaf] = node[()]
        for key, value in node.attrs.items():
            parent[f"{leaf}@{key}"] = value

    with h5py.File(path, "r") as fh:
        fh.visititems(visit)
    return tree


def compare_values(expected: Any, actual: Any, label: str, tolerance: Any, pointer: str = "") -> list[str]:
    """Recursive comparison: numbers and numeric arrays within tolerance, the rest exactly.

    ``label`` names the file, ``pointer`` the place inside it (RFC 6901); ``tolerance`` is a
    :class:`Tolerance` or a function from ``label + pointer`` to one (``None``: not compared).
    """
    where = f"{label} {pointer}" if pointer else label
    tol = tolerance(label + pointer) if callable(tolerance) else tolerance
    if tol is None:
        return []
    if _is_array(expected) or _is_array(actual):
        return _compare_arrays(np.asarray(expected), np.asarray(actual), where, tol)
    if isinstance(expected, dict) and isinstance(actual, dict):
        diffs = []
        for key in expected:
            if key not in actual:
                diffs.append(f"{label} {_child(pointer, key)}: missing (expected {_short(expected[key])})")
            else:
                diffs += compare_values(expected[key], actual[key], label, tolerance, _child(pointer, key))
        diffs += [f"{label} {_child(pointer, k)}: unexpected key (got {_short(actual[k])})"
                  for k in actual if k not in expected]
        return diffs
    if isinstance(expected, list) and isinstance(actual, list):
        if _numeric_list(expected) and _numeric_list(actual):
            return _compare_arrays(np.asarray(expected, float), np.asarray(actual, float), where, tol)
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual))
                for d in compare_values(e, a, label, tolerance, _child(pointer, i))]
    if _is_number(expected) and _is_number(actual):
        return _compare_numbers(float(expected), float(actual), where, tol)
    if expected != actual:
        return [f"{where}: expected {_short(expected)}, got {_short(actual)}"]
    return []


def _compare_numbers(expected: float, actual: float, where: str, tol: Tolerance) -> list[str]:
    if np.isnan(expected) and np.isnan(actual):
        return []
    limit = tol.limit(expected)
    if abs(actual - expected) <= limit:
        return []
    return [(f"{where}: expected {expected:.10g}, got {actual:.10g} (differs by "
            f"{abs(actual - expected):.3g}; allowed {limit:.3g} = abs {tol.abs:g} + rel {tol.rel:g} x |expected|)")]


def _compare_arrays(expected: np.ndarray, actual: np.ndarray, where: str, tol: Tolerance) -> list[str]:
    if expected.shape != actual.shape:
        return [f"{where}: shape {actual.shape} differs from the expected {expected.shape}"]
    numeric = expected.dtype.kind in "biuf" and actual.dtype.kind in "biuf"
    if not numeric:
        bad = expected != actual
        if not np.any(bad):
            return []
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return [(f"{where}: {int(np.sum(bad))} of {expected.size} values differ; first at {list(index)}: "
                f"expected {_short(expected[index])}, got {_short(actual[index])}")]
    e, a = expected.astype(float), actual.astype(float)
    close = np.isclose(a, e, rtol=tol.rel, atol=tol.abs, equal_nan=True)
    if close.all():
        return []
    error = np.where(close, 0.0, np.abs(a - e))
    index = np.unravel_index(int(np.nanargmax(np.nan_to_num(error, nan=np.inf))), e.shape) if e.ndim else ()
    at = f" at {[int(i) for i in index]}" if e.ndim else ""
    return [(f"{where}: {int((~close).sum())} of {e.size} values differ beyond tolerance ({tol}); "
            f"largest{at}: expected {e[index]:.10g}, got {a[index]:.10g}")]


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or isinstance(value, np.generic) and not isinstance(value, np.bool_)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _numeric_list(values: list[Any]) -> bool:
    return bool(values) and all(_is_number(v) or v is None for v in values)


def _child(pointer: str, key: Any) -> str:
    return f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=_plain) if not isinstance(value, np.ndarray) else np.array2string(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
