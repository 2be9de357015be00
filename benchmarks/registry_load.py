"""Time Registry.discover of N plugin folders, cold (validating everything) and warm (cache).

The folders are copies of the Hiplot samples in tests/data/hiplot-samples under new ids.
Goals: 100 plugins < 1 s cold (issue "Foundation"); 1,000 plugins < 1 s warm (issue 16).

    python benchmarks/registry_load.py [--plugins 1000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from hisci import Registry, Settings

SAMPLES = Path(__file__).parents[1] / "tests" / "data" / "hiplot-samples"
GOAL_WARM_S = 1.0


def make_folders(root: Path, n: int) -> None:
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_dir())
    for i in range(n):
        shutil.copytree(samples[i % len(samples)], root / f"plugin_{i:05d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=100, help="number of plugin folders (default 100)")
    n = parser.parse_args().plugins
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "plugins"
        make_folders(root, n)
        settings = Settings(plugin_path=(root,), builtins=False, entry_points=False, cache_dir=Path(tmp) / "cache")
        start = time.perf_counter()
        registry = Registry.discover(settings)
        cold = time.perf_counter() - start
        assert len(registry) == n, registry.problems
        warm = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            registry = Registry.discover(settings)
            warm = min(warm, time.perf_counter() - start)
        assert len(registry) == n
        start = time.perf_counter()
        schemas = [plugin.parameter_schema() for plugin in list(registry)[:100]]
        lazy = time.perf_counter() - start
        assert len(schemas) == min(n, 100)
        touched = root / "plugin_00000" / "ui.json"
        touched.write_text(touched.read_text("utf-8") + "\n", "utf-8")
        start = time.perf_counter()
        Registry.discover(settings)
        one_changed = time.perf_counter() - start
    print(f"Registry.discover of {n} plugins: cold {cold:.3f} s ({1000 * cold / n:.2f} ms per plugin, "
          f"every folder validated and cached)")
    print(f"  warm {warm:.3f} s ({1000 * warm / n:.3f} ms per plugin); ratio to the {GOAL_WARM_S:.0f} s goal: "
          f"{warm / GOAL_WARM_S:.2f}")
    print(f"  one folder changed: {one_changed:.3f} s (only it is validated again)")
    print(f"  parameter_schema() of 100 cached plugins, derived on first use: {lazy * 1000:.1f} ms")


if __name__ == "__main__":
    main()
