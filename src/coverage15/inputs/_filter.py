"""The layer ``filter`` language: a small, closed expression language over a table's columns.

A filter such as ``agencyType == 6`` or ``(beds >= 100) & ~name.str.contains("筹建")`` is
parsed with :func:`ast.parse` and then walked with an allow-list of node types; it is evaluated
with pandas operations on the table's columns, never with :func:`eval`, :meth:`pandas.eval` or
:meth:`pandas.DataFrame.eval`. Nothing in an expression can reach a Python name, attribute or
function: a name is a column, a literal is a number, text, ``True``, ``False`` or ``None``, and
the only calls are the string and blank predicates listed in ``docs/filters.md``.

It keeps the precedence of the pandas expressions it replaces: ``&`` and ``|`` bind like ``and``
and ``or`` (looser than comparisons), so ``agencyType == 6 | agencyType == 4`` needs no
parentheses; ``col == [1, 2]`` means ``col in [1, 2]``.
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from coverage15._errors import ConfigError, LayerError

__all__ = ["ALLOWED", "MAX_DEPTH", "MAX_LENGTH", "evaluate_filter"]

MAX_LENGTH = 2_000
"""Longest filter expression accepted, in characters."""
MAX_DEPTH = 40
"""Deepest nesting of operators accepted (``not``, ``~``, ``&``/``|`` inside one another).

Parentheses alone add none; Python's parser refuses more than 200 of them."""
ALLOWED = (
    "a filter may use column names (`quoted name` for one with spaces), numbers, 'text', True, "
    "False, None, comparisons == != < <= > >=, in / not in [list of literals], & | ~ and or "
    "not, parentheses, and col.str.contains('text'), col.str.startswith('text'), "
    "col.str.endswith('text'), col.isna(), col.notna() (see docs/filters.md)"
)

_Scalar = int | float | str | bool | None
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_TEXT_PREDICATES = ("contains", "startswith", "endswith")
_BLANK_PREDICATES = ("isna", "notna")
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Call: "calling a function or method",
    ast.Subscript: "indexing or slicing ([...])",
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "assignment (:=)",
    ast.IfExp: "if/else expressions",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Starred: "unpacking (*)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slicing",
}


@dataclass(frozen=True)
class _Source:
    """The expression as parsed, and where each of its characters came from in the original."""

    original: str
    text: str  # backtick names replaced by placeholders, & | by and / or
    origin: list[int]  # origin[i]: index in ``original`` of ``text[i]``
    quoted: dict[str, str]  # placeholder -> column name written in backticks


class _Refused(Exception):  # noqa: N818 (internal signal, turned into ConfigError/LayerError)
    def __init__(self, what: str, position: int, *, unknown_column: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.position = position  # index into the original expression
        self.unknown_column = unknown_column


def evaluate_filter(expression: str, frame: pd.DataFrame, *, text: pd.DataFrame | None = None,
                    where: str) -> pd.Series | _Scalar:
    """Evaluate a filter expression on a table's columns, without Python evaluation.

    Parameters
    ----------
    expression
        The filter, e.g. ``agencyType == 6``.
    frame
        The table; comparisons use its columns as they are (numbers written as text already
        converted by the caller).
    text
        The table as read, for the string predicates (``col.str.contains``); default ``frame``.
    where
        What the filter belongs to, for messages (e.g. ``layer 'centre' (platform.json)``).

    Returns
    -------
    pandas.Series or scalar
        One value per row (bool or nullable boolean), or a scalar when the expression names no
        column (the caller refuses it).

    Raises
    ------
    ConfigError
        The expression is too long or too deep, is not valid syntax, or uses anything outside
        the language (attributes, calls other than the predicates, ``@`` names, indexing...).
    LayerError
        The expression names a column the table does not have.
    """
    columns = [str(c) for c in frame.columns if c != "geometry"]
    head = f"{where}: filter {expression!r}"
    if len(expression) > MAX_LENGTH:
        msg = (f"{where}: filter of {len(expression):,} characters refused (at most "
               f"{MAX_LENGTH:,}); split the layer or simplify the filter")
        raise ConfigError(msg)
    try:
        source = _prepare(expression)
        tree = _parse(source)
        return _Evaluator(source, frame, frame if text is None else text).value(tree.body, 1)
    except _Refused as refused:
        at = f"at character {refused.position + 1}"
        if refused.unknown_column is not None:
            close = difflib.get_close_matches(refused.unknown_column, columns, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            msg = (f"{head} failed: no column {refused.unknown_column!r} ({at}); {hint}"
                   f"the file's columns are {columns}")
            raise LayerError(msg) from None
        snippet = expression[refused.position:refused.position + 30].splitlines()[0:1]
        near = f" near {snippet[0]!r}" if snippet and snippet[0].strip() else ""
        msg = f"{head} refused: {refused.what} ({at}{near}); {ALLOWED}"
        raise ConfigError(msg) from None


def _prepare(expression: str) -> _Source:
    """Replace `quoted names` by placeholders, ``&``/``|`` by ``and``/``or``, line ends by spaces.

    Text in quotes is copied as it is. ``@`` outside quotes is refused here: in pandas it
    reaches the caller's Python variables.
    """
    out: list[str] = []
    origin: list[int] = []
    quoted: dict[str, str] = {}

    def emit(piece: str, at: int) -> None:
        out.append(piece)
        origin.extend([at] * len(piece))

    i, n = 0, len(expression)
    while i < n:
        char = expression[i]
        if char in "'\"":
            end = i + 1
            while end < n and expression[end] != char and expression[end] != "\n":
                end += 2 if expression[end] == "\\" else 1
            end = min(end + 1, n)
            for k in range(i, end):
                emit(expression[k], k)
            i = end
        elif char == "`":
            end = expression.find("`", i + 1)
            name = expression[i + 1:end] if end > 0 else ""
            if end < 0 or not name.strip() or "\n" in name:
                raise _Refused("a ` needs a closing ` around a column name", i)
            placeholder = f"_bq{len(quoted)}_"
            while placeholder in expression:
                placeholder += "_"
            quoted[placeholder] = name
            emit(placeholder, i)
            i = end + 1
        elif char == "@":
            raise _Refused("@ (a reference to a Python variable) is not allowed", i)
        elif char in "&|":
            emit(" and " if char == "&" else " or ", i)
            i += 1
        elif char in "\r\n":  # a multi-line TOML string: one expression
            emit(" ", i)
            i += 1
        else:
            emit(char, i)
            i += 1
    origin.append(n)  # the end, for errors at the end of the text
    return _Source(expression, "".join(out), origin, quoted)


def _parse(source: _Source) -> ast.Expression:
    try:
        return ast.parse(source.text, mode="eval")
    except SyntaxError as exc:
        line = max(exc.lineno or 1, 1)
        starts = _line_starts(source.text)
        offset = starts[min(line, len(starts)) - 1] + max((exc.offset or 1) - 1, 0)
        position = source.origin[min(offset, len(source.origin) - 1)]
        raise _Refused(f"not a valid expression ({exc.msg})", position) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. nesting too deep to parse
        raise _Refused(f"the expression cannot be read ({type(exc).__name__}: {exc})",
                       0) from None


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


class _Evaluator:
    """Walks an expression tree, allowing only the filter language's nodes."""

    def __init__(self, source: _Source, frame: pd.DataFrame, text: pd.DataFrame) -> None:
        self.source = source
        self.frame = frame
        self.text = text
        self.starts = _line_starts(source.text)
        self.lines = source.text.splitlines(keepends=True) or [""]

    # -- positions ---------------------------------------------------------------------------
    def position(self, node: ast.AST, *, end: bool = False) -> int:
        """Index in the original expression of a node's start (or end)."""
        lineno = getattr(node, "end_lineno" if end else "lineno", 1) or 1
        offset = getattr(node, "end_col_offset" if end else "col_offset", 0) or 0
        line = self.lines[min(lineno, len(self.lines)) - 1]
        chars = len(line.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))
        at = self.starts[min(lineno, len(self.starts)) - 1] + chars
        return self.source.origin[min(at, len(self.source.origin) - 1)]

    def refuse(self, node: ast.AST, what: str | None = None) -> _Refused:
        if what is None:
            what = _REFUSED.get(type(node), f"this kind of expression ({type(node).__name__})")
        if isinstance(node, ast.Attribute):  # point at the attribute, not at what it is on
            what = f"attribute access ('.{node.attr}') is not allowed"
            return _Refused(what, self.position(node.value, end=True))
        return _Refused(f"{what} is not allowed", self.position(node))

    # -- values ------------------------------------------------------------------------------
    def value(self, node: ast.AST, depth: int) -> pd.Series | _Scalar:
        """A column (Series) or a literal; refuses anything else."""
        if depth > MAX_DEPTH:
            raise self.refuse(node, f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.BoolOp):
            return self.boolean(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.Name):
            return self.column(node)
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp):
            raise self.refuse(node, f"the operator {_operator_text(node.op)}")
        if isinstance(node, ast.List | ast.Tuple):
            raise self.refuse(node, "a list outside `in [...]`")
        raise self.refuse(node)

    def boolean(self, node: ast.BoolOp, depth: int) -> pd.Series | _Scalar:
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        first, *rest = node.values  # noqa: PD011 (an ast node's operands)
        result = self.value(first, depth + 1)
        for other in rest:
            result = combine(result, self.value(other, depth + 1))
        return result

    def unary(self, node: ast.UnaryOp, depth: int) -> pd.Series | _Scalar:
        if isinstance(node.op, ast.USub | ast.UAdd):
            return self.literal(node)
        operand = self.value(node.operand, depth + 1)  # not / ~: the same, as in pandas
        if isinstance(operand, pd.Series):
            inverted: pd.Series = ~operand
            return inverted
        return not operand

    def column(self, node: ast.Name) -> pd.Series:
        name = self.source.quoted.get(node.id, node.id)
        if node.id not in self.source.quoted and node.id.startswith("__"):
            raise self.refuse(node, f"the name {node.id!r}")
        if name not in self.frame.columns or name == "geometry":
            raise _Refused("an unknown column", self.position(node), unknown_column=name)
        series: pd.Series = self.frame[name]
        return series

    def literal(self, node: ast.AST) -> _Scalar:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = node.operand
            if (isinstance(inner, ast.Constant) and isinstance(inner.value, int | float)
                    and not isinstance(inner.value, bool)):
                return -inner.value if isinstance(node.op, ast.USub) else inner.value
            raise self.refuse(node, "a sign on anything but a number")
        if isinstance(node, ast.Constant) and (
                node.value is None or isinstance(node.value, bool | int | float | str)):
            value: _Scalar = node.value
            return value
        if isinstance(node, ast.Constant):
            raise self.refuse(node, f"a literal of type {type(node.value).__name__}")
        if isinstance(node, ast.Name | ast.Attribute | ast.Call):
            raise self.refuse(node, "a column or call inside a list")
        raise self.refuse(node)

    def literals(self, node: ast.AST) -> list[_Scalar] | None:
        """The items of a list or tuple of literals, or None when the node is not one."""
        if not isinstance(node, ast.List | ast.Tuple):
            return None
        return [self.literal(item) for item in node.elts]

    def compare(self, node: ast.Compare, depth: int) -> pd.Series | _Scalar:
        left_node = node.left
        left = self.operand(left_node, depth)
        parts: list[pd.Series | _Scalar] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.operand(right_node, depth)
            parts.append(self.compare_pair(op, left, right, node, right_node))
            left, left_node = right, right_node
        result = parts[0]
        for part in parts[1:]:  # 1 < x < 3: (1 < x) & (x < 3), as pandas does
            result = operator.and_(result, part)
        return result

    def operand(self, node: ast.AST, depth: int) -> pd.Series | _Scalar | list[_Scalar]:
        items = self.literals(node)
        return items if items is not None else self.value(node, depth + 1)

    def compare_pair(self, op: ast.cmpop, left: Any, right: Any, node: ast.Compare,
                     right_node: ast.AST) -> pd.Series | _Scalar:
        if isinstance(left, list):
            raise self.refuse(node, "a list on the left of a comparison")
        if isinstance(op, ast.In | ast.NotIn) or isinstance(right, list):
            if not isinstance(right, list):
                raise self.refuse(right_node, "`in` with anything but a [list of literals]")
            if not isinstance(op, ast.In | ast.NotIn | ast.Eq | ast.NotEq):
                raise self.refuse(right_node, "ordering against a list")
            keep = isinstance(op, ast.In | ast.Eq)
            if isinstance(left, pd.Series):
                inside: pd.Series = left.isin(right)
                return inside if keep else ~inside
            return (left in right) == keep
        compare = _COMPARE.get(type(op))
        if compare is None:
            raise self.refuse(right_node, "`is` / `is not` (use == or .isna())")
        result: pd.Series | _Scalar = compare(left, right)
        return result

    def call(self, node: ast.Call) -> pd.Series:
        func = node.func
        if not isinstance(func, ast.Attribute):
            raise self.refuse(node)
        if func.attr in _BLANK_PREDICATES and isinstance(func.value, ast.Name):
            series = self.column(func.value)
            if node.args or node.keywords:
                raise self.refuse(node, f".{func.attr}() with arguments")
            blank: pd.Series = series.isna()
            return blank if func.attr == "isna" else ~blank
        accessor = func.value
        if not (func.attr in _TEXT_PREDICATES and isinstance(accessor, ast.Attribute)
                and accessor.attr == "str" and isinstance(accessor.value, ast.Name)):
            raise self.refuse(func)
        self.column(accessor.value)  # a known column (refuses dunders and unknown names)
        name = self.source.quoted.get(accessor.value.id, accessor.value.id)
        arg = node.args[0] if len(node.args) == 1 else None
        if (node.keywords or arg is None or not isinstance(arg, ast.Constant)
                or not isinstance(arg.value, str)):
            raise self.refuse(node, f".str.{func.attr}() with anything but one 'text'")
        raw: pd.Series = self.text[name] if name in self.text.columns else self.frame[name]
        strings = raw.astype("string")
        if func.attr == "contains":
            found = strings.str.contains(arg.value, regex=False, na=False)
        elif func.attr == "startswith":
            found = strings.str.startswith(arg.value, na=False)
        else:
            found = strings.str.endswith(arg.value, na=False)
        matched: pd.Series = found.fillna(False).astype(bool)
        return matched


def _operator_text(op: ast.operator) -> str:
    symbols: Sequence[tuple[type[ast.operator], str]] = (
        (ast.Add, "+"), (ast.Sub, "-"), (ast.Mult, "*"), (ast.Div, "/"), (ast.FloorDiv, "//"),
        (ast.Mod, "%"), (ast.Pow, "**"), (ast.MatMult, "@"), (ast.LShift, "<<"),
        (ast.RShift, ">>"), (ast.BitXor, "^"), (ast.BitAnd, "&"), (ast.BitOr, "|"),
    )
    for kind, symbol in symbols:
        if isinstance(op, kind):
            return symbol
    return type(op).__name__
