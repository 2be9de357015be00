"""Reading Hiplot tables: pasted TSV text, .txt/.tsv (tab), .csv (comma), .xlsx."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from .errors import InputError


def read_table_text(text: str, source: str = "table") -> Any:
    import pandas as pd

    sep = "\t" if "\t" in text.split("\n", 1)[0] else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds
        raise InputError(f"{source}: cannot parse the table: {exc}", file=source) from None
    return frame.dropna(how="all").dropna(axis=1, how="all")


def read_table(path: Path) -> Any:
    import pandas as pd

    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".xlsx", ".xls")):
            frame = pd.read_excel(path)
        elif name.endswith((".csv", ".csv.gz")):
            frame = pd.read_csv(path)
        elif name.endswith((".txt", ".tsv", ".txt.gz", ".tsv.gz", ".tab")):
            frame = pd.read_csv(path, sep="\t")
        else:
            raise InputError(f"{path}: unknown table format", file=str(path),
                             allowed=[".txt", ".tsv", ".csv", ".xlsx"],
                             hint="save the table as tab-separated .txt, .csv or .xlsx")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found", file=str(path)) from None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: cannot read the table: {exc}", file=str(path)) from None
    return frame.dropna(how="all").dropna(axis=1, how="all")
