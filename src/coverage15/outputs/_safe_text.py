"""Text from the data made safe for the places it is written: spreadsheets and web pages.

Names of 街镇 and facilities come from OpenStreetMap and from colleagues' files: anyone can
put any text there. Two places would run such text instead of showing it:

* **Spreadsheets** (CSV opened in Excel, LibreOffice or WPS, and ``.xlsx``): a cell starting
  with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken as a formula, which can
  fetch a URL carrying the workbook's other cells (``=HYPERLINK("http://…?"&B2, …)``) or, in
  old Excel, run a command. :func:`neutralise_cell` prefixes such text with a single quote
  ``'`` (the OWASP advice for CSV injection), so it is shown as the text it is; numbers stay
  numbers (``-5`` as a number is not touched; the text ``"-5"`` is).
* **The map page** (HTML and the JSON in its ``<script>``): :func:`html_text` escapes text for
  HTML, :func:`script_json` writes JSON that cannot close or comment out its ``<script>``.
"""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd

__all__ = [
    "FORMULA_PREFIXES",
    "html_text",
    "neutralise_cell",
    "neutralise_frame",
    "script_json",
]

# a text cell starting with one of these is a formula to a spreadsheet program (OWASP)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def neutralise_cell(value: Any) -> Any:
    """``value`` with a ``'`` in front if it is text a spreadsheet would take as a formula.

    Anything but text (numbers, missing values, booleans) is returned as it is.

    Examples
    --------
    >>> neutralise_cell("=1+1"), neutralise_cell("-5"), neutralise_cell(-5)
    ("'=1+1", "'-5", -5)
    >>> neutralise_cell("外滩街道")
    '外滩街道'
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return QUOTE + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A table whose text cells and column names are safe to open in a spreadsheet.

    Only text columns (object, string or category) are looked at, and only text cells in
    them changed (see :func:`neutralise_cell`); numeric columns keep their type and values.
    The input is never changed: when nothing needs neutralising it is returned as it is
    (so the same table gives the same bytes as before), otherwise a copy.
    """
    out = frame
    for i in range(frame.shape[1]):
        series = frame.iloc[:, i]
        if not (series.dtype == object
                or isinstance(series.dtype, pd.StringDtype | pd.CategoricalDtype)):
            continue
        values = series.astype(object)
        hit = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES))
        if not bool(hit.any()):
            continue
        if out is frame:
            out = frame.copy()
        fixed = values.map(neutralise_cell)
        out.isetitem(i, fixed.astype(series.dtype)
                     if isinstance(series.dtype, pd.StringDtype) else fixed)
    names = [neutralise_cell(c) for c in frame.columns]
    if names != list(frame.columns):
        if out is frame:
            out = frame.copy()
        out.columns = pd.Index(names)
    return out


def html_text(value: object) -> str:
    """Text (any value, as ``str``) escaped for HTML: element content or a quoted attribute."""
    return html.escape(str(value), quote=True)


_SCRIPT_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value: Any) -> str:
    """JSON to put inside an HTML ``<script>``: no ``</script>``, ``<!--`` or line separators.

    ``<``, ``>`` and ``&`` are written as JSON's ``u003c``-style escapes (inside JSON strings,
    where alone they can occur), and U+2028/U+2029 too (line ends to older JavaScript); the
    script reads the same values.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_SCRIPT_UNSAFE)
