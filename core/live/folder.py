"""Folder source: new files in a folder the detector writes to, taken when complete."""

from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path

from ..errors import InputError
from .items import LiveItem
from .source import Source

MARKER = ".done"
SKIP_SUFFIXES = (MARKER, ".tmp", ".part", ".partial", ".lock")
HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".hdf")


class FolderSource(Source):
    """Polls ``folder`` (no inotify: network file systems do not send events) for files
    matching ``pattern`` and yields each once it is complete.

    Completion (``completion``):

    - ``marker``: ``NAME.done`` exists beside ``NAME``;
    - ``settle``: size and mtime unchanged for ``settle`` seconds;
    - ``swmr``: as settle, and the HDF5 file opens in SWMR read mode;
    - ``auto``: a marker wins at once; else settle, plus the HDF5 open check for .h5 files.

    Each completed file is appended to ``index_path`` (``seq<TAB>name``) so a resumed run
    gives every file the same sequence number and never takes one twice.
    """

    def __init__(self, name: str, folder: str | Path, index_path: Path, *, pattern: str = "*",
                 completion: str = "auto", settle: float = 0.5, poll: float = 0.1,
                 checkpoint: int = 0, logger=None) -> None:
        super().__init__(name, 1, logger)
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise InputError(f"live.watch.{name}: folder not found: {folder}", file=str(folder),
                             pointer=f"/live/watch/{name}", hint="create it or give the detector's folder")
        self.pattern, self.completion, self.settle, self.poll = pattern, completion, settle, poll
        self.index_path = index_path
        self._known: set[str] = set()
        self._candidates: dict[str, tuple[int, int, float]] = {}
        self._resume(checkpoint)
        self._index = open(index_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _resume(self, checkpoint: int) -> None:
        if not self.index_path.exists():
            return
        entries = []
        for line in self.index_path.read_text("utf-8").splitlines():
            seq, _, fname = line.partition("\t")
            if seq.isdigit() and fname:
                entries.append((int(seq), fname))
        for seq, fname in sorted(entries):
            self._known.add(fname)
            self.next_seq = max(self.next_seq, seq + 1)
            path = self.folder / fname
            if seq > checkpoint and path.exists():
                st = path.stat()
                self._push(LiveItem(seq, self.name, path, meta={"size": st.st_size, "resumed": True}))

    def _produce(self) -> None:
        now = time.time()
        done = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            self.log.warning("live.watch.%s: cannot list %s: %s", self.name, self.folder, exc)
            self._stop.wait(self.poll)
            return
        names = {e.name for e in entries}
        for entry in entries:
            fname = entry.name
            if (fname in self._known or fname.startswith(".") or fname.endswith(SKIP_SUFFIXES)
                    or not fnmatch.fnmatch(fname, self.pattern) or not entry.is_file()):
                continue
            st = entry.stat()
            if self._complete(fname, st.st_size, st.st_mtime_ns, now, fname + MARKER in names):
                done.append((st.st_mtime_ns, fname, st.st_size))
        for _mtime, fname, size in sorted(done):
            seq = self._new_seq()
            self._index.write(f"{seq}\t{fname}\n")
            self._index.flush()
            self._known.add(fname)
            self._candidates.pop(fname, None)
            self.counters.add(received=1, bytes=size)
            self._push(LiveItem(seq, self.name, self.folder / fname, meta={"size": size}))
        self._stop.wait(self.poll)

    def _complete(self, fname: str, size: int, mtime: int, now: float, marked: bool) -> bool:
        if marked and self.completion in ("auto", "marker"):
            return True
        if self.completion == "marker":
            return False
        previous = self._candidates.get(fname)
        if previous is None or previous[:2] != (size, mtime):
            self._candidates[fname] = (size, mtime, now)
            return self.settle == 0 and self._opens(fname)
        if now - previous[2] < self.settle:
            return False
        return self._opens(fname)

    def _opens(self, fname: str) -> bool:
        if not (self.completion == "swmr" or fname.lower().endswith(HDF5_SUFFIXES)):
            return True
        import h5py

        try:
            with h5py.File(self.folder / fname, "r", swmr=True):
                return True
        except OSError:
            return False  # still being written (locked or truncated): try again next poll

    def waiting(self) -> int:
        return super().waiting() + len(self._candidates)

    def close(self) -> None:
        super().close()
        self._index.close()
