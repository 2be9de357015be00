"""Preview runs in a child process with a timeout and a memory cap, never in the server.

``HISCI_PREVIEW_TIMEOUT`` (seconds, default 300) and ``HISCI_PREVIEW_MEMORY_MB`` (address
space of the child, default 8192; 0 for none). The caller removes the output folder.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 300.0
DEFAULT_MEMORY_MB = 8192


def _limits(memory_mb: int):
    def apply() -> None:
        os.setsid()  # its own process group: a timeout kills the plugin's children too
        if memory_mb > 0:
            cap = memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return apply


def run_isolated(folder: Path, package: str | None, inputs: dict[str, list[str]], output: Path,
                 timeout: float | None = None, memory_mb: int | None = None) -> dict[str, Any]:
    """Run the example of the plugin in ``folder`` in a child process.

    Returns
    -------
    dict
        ``{"status", "error", "summary", "figures"}``; status ``failed`` with a reason when the
        child timed out, ran out of memory or died.
    """
    timeout = float(os.environ.get("HISCI_PREVIEW_TIMEOUT", DEFAULT_TIMEOUT)) if timeout is None else timeout
    memory_mb = int(os.environ.get("HISCI_PREVIEW_MEMORY_MB", DEFAULT_MEMORY_MB)) if memory_mb is None else memory_mb
    output.mkdir(parents=True, exist_ok=True)
    spec = output.parent / f"{output.name}.spec.json"
    spec.write_text(json.dumps({"folder": str(folder), "package": package, "inputs": inputs,
                                "output": str(output)}), "utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "dash_app.preview_child", str(spec)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limits(memory_mb))
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return {"status": "failed", "error": f"the preview run took longer than {timeout:g} s "
                                             "(HISCI_PREVIEW_TIMEOUT) and was stopped", "summary": {}, "figures": []}
    finally:
        spec.unlink(missing_ok=True)
    report = output / "preview-result.json"
    if not report.exists():
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:] if err else []
        return {"status": "failed", "error": f"the preview process ended with code {proc.returncode}"
                + (f": {' '.join(tail)}" if tail else ""), "summary": {}, "figures": []}
    return json.loads(report.read_text("utf-8"))
