"""The child process of a preview run: ``python -m dash_app.preview_child SPEC.json``.

SPEC: ``{"folder", "package", "inputs", "output"}``. Loads the plugin from the preview
folder, runs its example with the local runner into ``output`` and writes
``output/preview-result.json`` (status, error, summary, figures). Runs in its own process so
a slow, greedy or crashing plugin cannot take the web server with it (preview_runner.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(spec_path: str) -> int:
    from hisci import HisciError, load_plugin
    from hisci.preview import run_example

    spec = json.loads(Path(spec_path).read_text("utf-8"))
    output = Path(spec["output"])
    try:
        plugin = load_plugin(Path(spec["folder"]), "preview", package=spec.get("package"))
        report = run_example(plugin, output)
    except HisciError as exc:
        report = {"status": "refused", "error": exc.message, "problems": [str(p) for p in exc.problems]}
    (output / "preview-result.json").write_text(json.dumps(report, default=str), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
