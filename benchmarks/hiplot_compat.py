"""How many real Hiplot plugin folders load (goal: at least 99 %), and why the others do not.

    python benchmarks/hiplot_compat.py [ROOT ...]

Each ROOT is searched recursively for folders holding meta.json, data.json and ui.json (a
checkout of hiplot/plugins-open, say). Without ROOT, the copies in tests/data are used.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from hisci.errors import HisciError
from hisci.plugin import load_plugin

DATA = Path(__file__).parents[1] / "tests" / "data"
GOAL = 0.99


def plugin_folders(roots: list[Path]) -> list[Path]:
    found = set()
    for root in roots:
        for meta in root.rglob("meta.json"):
            if (meta.parent / "data.json").is_file() and (meta.parent / "ui.json").is_file():
                found.add(meta.parent)
    return sorted(found)


def _kind(message: str) -> str:
    for needle, kind in (("empty stub", "{} stub widget (hidden, keeps its value)"),
                         ("no default", "widget without a default (empty value of its type)"),
                         ("exampleData sets", "exampleData key nothing declares (ignored)")):
        if needle in message:
            return kind
    return message


def main() -> None:
    roots = [Path(a) for a in sys.argv[1:]] or [DATA / "hiplot-samples", DATA / "hiplot-quirks"]
    folders = plugin_folders(roots)
    if not folders:
        sys.exit(f"no plugin folders under {', '.join(map(str, roots))}")
    start = time.perf_counter()
    failed: dict[Path, HisciError] = {}
    warnings: Counter[str] = Counter()
    for folder in folders:
        try:
            plugin = load_plugin(folder)
        except HisciError as err:
            failed[folder] = err
            continue
        for warning in plugin.warnings:
            warnings[_kind(warning.message)] += 1
    ok = len(folders) - len(failed)
    rate = ok / len(folders)
    print(f"{ok} of {len(folders)} Hiplot plugin folders load ({100 * rate:.1f} %; goal {100 * GOAL:.0f} %) "
          f"in {time.perf_counter() - start:.2f} s")
    for kind, count in warnings.most_common():
        print(f"  warning x{count}: {kind}")
    for folder, err in failed.items():
        print(f"  REFUSED {folder}: {str(err).splitlines()[-1].strip()}")
    if rate < GOAL:
        sys.exit(1)


if __name__ == "__main__":
    main()
