"""RunContext: the only thing a plugin sees of the platform."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import InputError, JobCancelled
from .storage import write_json

ProgressSink = Callable[[float, str], None]


class RunContext:
    """Parameters, inputs, output folder, progress, log, array module and cancellation.

    Parameters
    ----------
    params : validated request, defaults filled in (sections data, dataArg, general, extra,
        textarea).
    inputs : resolved input files by input id.
    output_dir : where the plugin writes; created if missing.
    plugin_dir : the plugin's own folder (for bundled data).
    logger : receives the plugin's log lines (the runner sends them to log.txt).
    progress_sink : called with (fraction, message) on every progress report.
    cancel_check : returns True when the job should stop.
    xp : numpy, or cupy on a GPU worker.
    threads : threads this job may use (``ctx.threads``; pass it to ducc0 ``nthreads``,
        ``numba.set_num_threads``); default :func:`hisci.threads.worker_threads`
        (``HISCI_WORKER_THREADS``, else the cores this process may run on).
    """

    def __init__(
        self,
        params: dict[str, Any],
        inputs: dict[str, list[Path]],
        output_dir: Path,
        plugin_dir: Path,
        logger: logging.Logger,
        progress_sink: ProgressSink | None = None,
        cancel_check: Callable[[], bool] | None = None,
        xp: ModuleType | None = None,
        live: Any = None,
        threads: int | None = None,
    ) -> None:
        self.params = params
        self._inputs = inputs
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.plugin_dir = Path(plugin_dir)
        self.logger = logger
        self._progress_sink = progress_sink
        self._cancel_check = cancel_check or (lambda: False)
        if xp is None:
            import numpy as xp
        self.xp = xp
        if threads is None:
            from .threads import worker_threads

            threads = worker_threads()
        self.threads = max(1, int(threads))
        self.figures: list[str] = []
        #: The LiveSession of a live run (``hisci.live``), None otherwise.
        self.live = live
        self._span = (0.0, 1.0)
        #: How many chunks ``plan`` should aim for, and the plugin's ``runtime.parallel``
        #: (set by the parallel executors; see :func:`hisci.parallel.split_range`).
        self.chunk_target: int = 1
        self.parallel: Any = None

    @property
    def on_gpu(self) -> bool:
        return self.xp.__name__ != "numpy"

    def has_input(self, name: str) -> bool:
        return bool(self._inputs.get(name))

    def inputs(self, name: str) -> list[Path]:
        """All files given for input ``name`` ([] when none)."""
        return list(self._inputs.get(name, []))

    def input(self, name: str) -> Path:
        """The (first) file given for input ``name``."""
        files = self._inputs.get(name)
        if not files:
            raise InputError(f"input '{name}' was not given", pointer=f"/data/{name}",
                             hint=f"give a file for input '{name}'")
        return files[0]

    def table(self, name: str) -> Any:
        """Input ``name`` as a pandas DataFrame (pasted table or uploaded .txt/.csv/.xlsx)."""
        from .tables import read_table, read_table_text

        text = (self.params.get("textarea") or {}).get(name)
        if self.has_input(name):
            return read_table(self.input(name))
        if text:
            return read_table_text(text, source=f"textarea.{name}")
        raise InputError(f"table '{name}' was not given", pointer=f"/data/{name}",
                         hint=f"paste the table into textarea.{name} or give a file for input '{name}'")

    @contextmanager
    def field(self, name: str, *, file: str | Path = "", hint: str = "") -> Iterator[Any]:
        """Blame a parameter (or an input) for any ``ValueError`` raised inside the block.

        Parameters
        ----------
        name : an ``extra`` field name (pointer ``/extra/<name>``), or a JSON pointer
            such as ``"/data/poni"``.
        file : the input file the error is about, if any (reported as its name).
        hint : what to change, when the message alone does not say.

        Yields
        ------
        The value of ``params["extra"][name]`` (None for a pointer).

        Raises
        ------
        InputError
            At that pointer, with the ValueError's message and the given value.

        Examples
        --------
        >>> with ctx.field("composition") as text:        # doctest: +SKIP
        ...     atoms = parse_composition(text)
        """
        pointer = name if name.startswith("/") else f"/extra/{name}"
        value = None if name.startswith("/") else (self.params.get("extra") or {}).get(name)
        try:
            yield value
        except ValueError as exc:
            raise InputError(str(exc), pointer=pointer, file=Path(file).name if file else "",
                             given=value, hint=hint) from None

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1 of the current span) and a message.

        Raises
        ------
        JobCancelled
            When the job was cancelled (not once a live run has stopped: the plugin is then
            writing its final outputs, which a cancel asks for).
        """
        if self._cancel_check() and not (self.live is not None and self.live.stop_reason):
            raise JobCancelled("the job was cancelled")
        lo, hi = self._span
        fraction = lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0)
        self.logger.info("progress %3.0f%% %s", 100 * fraction, message)
        if self._progress_sink:
            self._progress_sink(fraction, message)

    @contextmanager
    def progress_span(self, start: float, stop: float) -> Iterator[Callable[[int, int, str], None]]:
        """Map ``ctx.progress(0..1)`` inside the block onto ``start..stop`` of the job.

        Yields a ``step(done, total, message="")`` callback for loops and library
        functions that count steps. Spans nest.

        Examples
        --------
        >>> with ctx.progress_span(0.1, 0.9) as step:     # doctest: +SKIP
        ...     for k, frame in enumerate(frames):
        ...         step(k, len(frames), f"frame {k}")
        """
        outer = self._span
        lo, hi = outer
        self._span = (lo + (hi - lo) * float(start), lo + (hi - lo) * float(stop))

        def step(done: int, total: int, message: str = "") -> None:
            self.progress(done / total if total else 1.0, message)

        try:
            yield step
        finally:
            self._span = outer

    def cancelled(self) -> bool:
        return bool(self._cancel_check())

    def live_items(self, name: str | None = None) -> Any:
        """Items of live source ``name`` as they arrive (a ``hisci.live.LiveItem`` each, with
        ``seq``, ``path`` or ``data``, ``meta``), until the run is stopped (cancel, Ctrl-C,
        ``until``, ``idle``, end of run). An item counts as finished when the next is asked for."""
        if self.live is None:
            raise InputError("this run is not live, so it has no live items",
                             hint="start it as a live run with a source for this input (a watched folder or a ZeroMQ address)")
        return self.live.items(name)

    def publish(self, name: str, data: Any) -> None:
        """Publish one live result (small JSON data or arrays) to the job's event stream, where
        the job page draws it. Outside a live run it is ignored."""
        if self.live is not None:
            self.live.publish(name, data)

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a plotly figure as ``<name>.json`` (plotly JSON) and ``<name>.html``."""
        path = self.output_dir / f"{name}.json"
        path.write_text(fig.to_json(), encoding="utf-8")
        fig.write_html(self.output_dir / f"{name}.html", include_plotlyjs="cdn", full_html=True)
        self.figures.append(path.name)
        return path

    def save_array(self, name: str, array: Any, attrs: dict[str, Any] | None = None) -> Path:
        """Save an array with its attributes; returns the file written.

        Parameters
        ----------
        name : file name; ``.h5``/``.hdf5`` (dataset ``data``, attributes on it) or ``.npy``
            (attributes in ``<name>.attrs.json``). No suffix means ``.h5``.
        array : numpy or cupy array (a cupy array is copied to the host).
        attrs : plain values (numbers, strings, lists) describing the array: units, axes...
        """
        import numpy

        path = self.output_dir / (name if Path(name).suffix else f"{name}.h5")
        if hasattr(array, "get") and not isinstance(array, numpy.ndarray):
            array = array.get()  # cupy -> numpy
        array = numpy.asarray(array)
        if path.suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "w") as fh:
                dataset = fh.create_dataset("data", data=array)
                for key, value in (attrs or {}).items():
                    dataset.attrs[key] = value if not isinstance(value, dict) else json.dumps(value)
        elif path.suffix == ".npy":
            numpy.save(path, array)
            if attrs:
                write_json(path.with_name(path.name + ".attrs.json"), attrs)
        else:
            raise ValueError(f"save_array: unknown suffix in {name!r}; use .h5, .hdf5 or .npy")
        return path

    def save_json(self, name: str, document: Any) -> Path:
        """Write ``document`` as JSON (numpy scalars and arrays allowed) to ``<name>``."""
        path = self.output_dir / (name if name.endswith(".json") else f"{name}.json")
        write_json(path, document)
        return path
