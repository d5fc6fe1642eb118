"""SPAQ: ``Annotations/MOS and Image attribute scores.xlsx`` (``Image name``, ``MOS``) with
``TestImage/``. MOS 0-100, higher is better. 11,125 images, evaluated after resizing the shorter
side to 512 (``short_side``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ...utils.messages import GET_AGAIN, file_line
from ...utils.names import agree
from .base import MAX_UNPACKED, DatasetError, IQADataset, Record, column_indices, found, require_file, score_range

LABELS = Path("Annotations") / "MOS and Image attribute scores.xlsx"
SHORT_SIDE = 512
COLUMNS = ("Image name", "MOS")
WHAT = "the SPAQ annotation workbook with columns 'Image name', 'MOS'"
WORKBOOK_AS_DISTRIBUTED = "give SPAQ's workbook as it is distributed"


def load(root: Path, check: bool = True) -> IQADataset:
    root = Path(root)
    path = require_file(found(root, LABELS), WHAT)
    try:
        import openpyxl  # noqa: F401  (pandas reads .xlsx with it: a missing one is said before the file is judged)

        with zipfile.ZipFile(path) as workbook:  # its parts, as declared: zipfile reads no more than that
            unpacked = sum(part.file_size for part in workbook.infolist())
        if unpacked > MAX_UNPACKED:  # 1.3 MB unpacking to 400 MB of cells: 145 s, 2 GB, a MemoryError
            raise DatasetError(
                file_line(
                    path,
                    f"its parts unpack to {unpacked:,} bytes, more than the {MAX_UNPACKED:,} a label workbook may, "
                    "so not SPAQ's workbook",
                    WORKBOOK_AS_DISTRIBUTED,
                )
            )
        table = pd.read_excel(path, engine="openpyxl")
    except ImportError as e:  # pandas' "Missing optional dependency": not the workbook's fault
        raise DatasetError(
            file_line(path, f"reading SPAQ's .xlsx labels needs openpyxl ({e})", "pip install openpyxl")
        ) from e
    except (DatasetError, PermissionError):  # load_dataset says the one this user may not read
        raise
    except Exception as e:  # zipfile/openpyxl raise several types for corrupt workbooks
        raise DatasetError(
            file_line(
                path, f"not a readable .xlsx workbook ({e})", f"{GET_AGAIN}, or save it as .xlsx from a spreadsheet"
            )
        ) from e
    (name_at, _), (mos_at, _) = column_indices(path, list(table.columns), COLUMNS, what=WHAT)
    scores = pd.to_numeric(table.iloc[:, mos_at], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise DatasetError(
            file_line(
                path,
                f"MOS is not a number in {agree(bad.size, 'row')} {[int(i) + 2 for i in bad[:5]]}",
                f"{WORKBOOK_AS_DISTRIBUTED}, or give those rows a number",
            )
        )
    names = ["" if pd.isna(n) else str(n).strip() for n in table.iloc[:, name_at]]
    empty = [row for row, name in enumerate(names, start=2) if not name]
    if empty:  # an empty cell was the image 'TestImage/nan', then "not found"
        raise DatasetError(f"{path}, row {empty[0]}: empty Image name; name the image of each row, or remove the row")
    records = [Record(root / "TestImage" / n, float(s), line=row) for row, (n, s) in enumerate(zip(names, scores), 2)]
    return IQADataset("spaq", root, records, score_range("spaq"), short_side=SHORT_SIDE, label_file=path)
