"""CSV and XLSX imports read and checked as columns, in compiled code (polars).

The row reader (resolvers.import_files) spends some 40 µs a row in CPython: the csv
module, value conversion, then a pydantic model per row. Here the file is parsed by
polars' CSV reader and every check a clean row must pass runs as a vector expression
over a chunk's columns: text lengths, NUL bytes, numbers with a decimal comma and
their ranges, booleans, statuses, EAN shape and check digit. A row that passes them
all becomes a checked item straight from its typed values; a row that fails any is
handed to the per-row checks (product_writes.check_item) with the values the row
reader would have made of it, so its errors and warnings, written to the job's logs,
are word for word those of the row path.

Only what the row reader reads exactly alike is read here: UTF-8 CSV files whose header
names are distinct, non-empty and recognised, one column per product field. Anything
else (Windows-1252, a malformed or ragged file…) goes to the row reader, which also
words the errors.

An XLSX sheet is parsed by calamine (as the row reader does, and within the same
in-memory limit): by fastexcel into Arrow columns when that gives exactly
python-calamine's cells, else by python-calamine into Python cells. Its cells, typed, are
turned into the texts the CSV path checks, a column at a time: a whole number in a text
field (an EAN typed as a number) reads as its digits, a number in a numeric field as
text that parses back to the same float, a boolean in a boolean field as "true"/"false".
A cell that has no such text (a date, a boolean in a text field, a float polars writes
with an exponent…) makes its row "odd": that row alone is mapped by the row reader's
map_record from its cells, and goes through the per-row checks.
"""

import abc
import bisect
import csv
import functools
import io
import logging
import os
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, BinaryIO

import annotated_types
import polars as pl

from resolvers.bounds import NUL
from resolvers.ean import EAN_FORMAT
from resolvers.import_files import (
    BOOLEANS,
    READERS,
    XLSX_IN_MEMORY_LIMIT,
    HeaderMap,
    ImportFileError,
    Row,
    check_zip,
    csv_encoding,
    field_kinds,
    is_blank,
    map_record,
)
from resolvers.import_merge import Items
from resolvers.import_runs import FileKeys, RunPlan, ean_of
from resolvers.product_fields import STATUSES, PriceValue, ProductFields
from resolvers.product_writes import Checked, CheckedItem, WriteItem, WriteOptions, check_item

# What Python's str.strip() strips (the row reader strips cells with it): Unicode white
# space and the four separators U+001C..U+001F, which Rust's strip keeps.
_WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
# A number's text made what polars parses in one pass: the thousands separators French
# numbers carry dropped, a decimal comma made a point (the shapes below then read the
# point as they read the comma: the same texts match).
_NUMBER_MARKS = {" ": "", "\u00a0": "", "\u202f": "", ",": "."}
_NUMBER = r"^[+-]?[0-9]+(?:\.[0-9]+)?$"
# Prices are kept to the cent: more decimals round, which the per-row checks do.
_CENTS = r"^[+-]?[0-9]+(?:\.[0-9]{1,2})?$"
# Line ends the csv module counts (reader.line_num), inside quoted cells too.
_LINE_ENDS = r"\r\n|\r|\n"
_RARE = "[\r\n\x1c-\x1f]"
_SEPARATORS = "\x1c\x1d\x1e\x1f"  # what Python strips and Rust keeps
_READ_ROWS = 50_000  # rows polars hands over at a time
# Sheet rows converted at a time: their cells are Python objects beside the parsed sheet
# (measured, 100,000 rows × 15: 50,000 at a time peak at 374 MB, 10,000 at 288 MB, as
# fast).
_SHEET_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class _Check:
    """What a field's cells must be to pass every check in a vector: `kind` says how the
    stripped text converts, `low`/`high` bound a number, `max_length` a text."""

    kind: str  # text, ean, status, float, cents, int, bool
    low: float | None = None
    high: float | None = None
    max_length: int | None = None


def _constraints(annotation: Any) -> list[Any]:
    found: list[Any] = []
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            for meta in arg.__metadata__:
                found.extend(getattr(meta, "metadata", [meta]))
    return found


def _check_for(name: str, info: Any) -> _Check | None:
    """The vector check of a field, or None when its cells go to the per-row checks."""
    if name == "ean":
        return _Check("ean", max_length=32)
    if name == "status":
        return _Check("status")
    kinds = field_kinds(info.annotation) - {type(None)}
    bounds = _constraints(info.annotation)
    known = (annotated_types.Ge, annotated_types.Le, annotated_types.MaxLen, annotated_types.MinLen)
    rounded = PriceValue in typing.get_args(info.annotation)
    if not rounded and any(
        not isinstance(b, known) and not hasattr(b, "allow_inf_nan") for b in bounds
    ):
        return None  # a pattern, a validator: not worth a vector
    low = next(
        (float(typing.cast(float, b.ge)) for b in bounds if isinstance(b, annotated_types.Ge)), None
    )
    high = next(
        (float(typing.cast(float, b.le)) for b in bounds if isinstance(b, annotated_types.Le)), None
    )
    longest = next((b.max_length for b in bounds if isinstance(b, annotated_types.MaxLen)), None)
    if kinds == {str}:
        return _Check("text", max_length=longest)
    if kinds == {bool}:
        return _Check("bool")
    if kinds == {int}:
        return _Check("int", low, high)
    if kinds == {float}:
        return _Check("cents" if rounded else "float", low, high)
    return None


CHECKS: dict[str, _Check | None] = {
    name: _check_for(name, info) for name, info in ProductFields.model_fields.items()
}


def _strip(column: pl.Expr, *, exact: bool = False) -> pl.Expr:
    """The cell as the row reader reads it: stripped, None when empty. `exact` strips
    the separators U+001C..U+001F too (slower)."""
    # replace, not when/then: masking a text column builds a new one (twice the CPU).
    return column.str.strip_chars(_WHITESPACE if exact else None).replace("", None)


def _typed(field: str, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The field's value from its stripped text, and whether that value passes every
    check (True where the cell is empty); both vectors."""
    check = CHECKS[field]
    present = text.is_not_null()
    if check is None:
        return text, ~present
    kind = check.kind
    no_nul = ~text.str.contains(NUL, literal=True)
    if kind in ("text", "ean"):
        fits = text.str.len_chars() <= check.max_length if check.max_length else pl.lit(True)
        ok = no_nul & fits
        if kind == "ean":
            ok = (
                ok
                & text.str.contains(EAN_FORMAT.pattern.replace(r"\d", "[0-9]"))
                & _check_digit(text)
            )
        return text, ~present | ok.fill_null(False)
    if kind == "status":
        return text, ~present | text.is_in(list(STATUSES)).fill_null(False)
    if kind == "bool":
        lowered = text.str.to_lowercase()
        value = lowered.replace_strict(BOOLEANS, default=None, return_dtype=pl.Boolean)
        return value, ~present | value.is_not_null()
    # One literal pass (Aho-Corasick) instead of a regex pass for the separators and a
    # second for the comma: 0.04 µs a cell less, over seven number columns.
    compact = text.str.replace_many(_NUMBER_MARKS)
    shaped = compact.str.contains(_CENTS if kind == "cents" else _NUMBER)
    # Cast before the mask (every shaped text parses, the rest are masked out): masking
    # the texts first made polars build a text column per number field (0.02 µs a cell).
    parsed = compact.cast(pl.Float64, strict=False)
    number = pl.when(shaped).then(parsed)
    ok = shaped & number.is_finite()
    if check.low is not None:
        ok = ok & (number >= check.low)
    if check.high is not None:
        ok = ok & (number <= check.high)
    if kind == "int":
        ok = ok & (number == number.floor())
        value = pl.when(ok).then(number).cast(pl.Int64)
        return value, ~present | ok.fill_null(False)
    return number, ~present | ok.fill_null(False)


def _check_digit(ean: pl.Expr) -> pl.Expr:
    """The GS1 check digit holds (for a text of 8, 12, 13 or 14 ASCII digits): leading
    zeros weigh nothing, so every length is summed as 14 digits, taken from the text's
    integer (integer arithmetic: a fifth of the CPU of slicing the text)."""
    number = ean.cast(pl.Int64, strict=False)
    digits = [number // 10 ** (13 - i) % 10 for i in range(14)]
    total = pl.sum_horizontal(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13]))
    return (10 - total % 10) % 10 == digits[13]


def _path_of(file: BinaryIO) -> str | None:
    try:
        path = f"/proc/self/fd/{file.fileno()}"
    except io.UnsupportedOperation:
        return None  # in memory
    return path if os.path.exists(path) else None


class Columns(abc.ABC):
    """A file read as columns: `texts()` yields its non-blank records a frame at a time,
    with their line numbers (`_line`) and their fields' stripped texts; `total` counts
    them. `odd` holds, by line, what the row reader makes of records that have no texts
    to check (see the module's docstring)."""

    def __init__(self) -> None:
        self.total = 0
        self.odd: dict[int, dict[str, Any]] = {}

    @abc.abstractmethod
    def texts(self) -> Iterator[pl.DataFrame]:
        """The records, a frame of texts at a time (CSV and XLSX read them differently)."""

    def row_data(self, line: int, fields: list[str], texts: tuple[Any, ...]) -> dict[str, Any]:
        """What the row reader makes of a record that fails a vector check."""
        odd = self.odd.get(line)
        return _mapped(fields, texts) if odd is None else odd


def open_columns(file: BinaryIO, file_type: str, mapping: dict[str, str] | None) -> Columns | None:
    """The file read as columns, or None when the row reader must read it."""
    if file_type == "csv":
        return CsvColumns.open(file, mapping)
    if file_type == "xlsx":
        return XlsxColumns.open(file, mapping)
    return None


def _has_rare(frame: pl.DataFrame, cells: list[pl.Expr]) -> bool:
    """Whether a cell holds a line break or a separator only Python strips: rare, so
    counted and stripped exactly only in the frames that have them."""
    return bool(
        frame.select(
            pl.any_horizontal(c.str.contains(_RARE).fill_null(False).any() for c in cells)
        ).item()
    )


class CsvColumns(Columns):
    """A CSV file read as columns; `open` says whether it can be (else None)."""

    def __init__(self, source: Any, separator: str, headers: list[str], mapping: HeaderMap):
        super().__init__()
        self._source = source
        self._separator = separator
        self._headers = headers
        # Product field → the file column it reads.
        self.fields = {
            field: header for header in headers if (field := mapping.field(header)) is not None
        }

    @classmethod
    def open(cls, file: BinaryIO, mapping: dict[str, str] | None) -> "CsvColumns | None":
        try:
            if is_blank(file) or csv_encoding(file) not in ("utf-8", "utf-8-sig"):
                return None
        except ImportFileError:
            return None  # the row reader raises it again
        file.seek(0)
        text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
        try:
            first_line = text.readline()
        finally:
            text.detach()
        separator = max((";", ",", "\t"), key=first_line.count)
        try:
            headers = next(csv.reader([first_line], delimiter=separator, strict=True))
        except (csv.Error, StopIteration):
            return None
        headers[-1:] = [h.rstrip("\r\n") for h in headers[-1:]]
        header_map = HeaderMap(mapping)
        fields = [header_map.field(h) for h in headers]
        mapped = [f for f in fields if f is not None]
        if (
            not all(h.strip() for h in headers)
            or len(set(headers)) != len(headers)
            or not mapped
            or len(set(mapped)) != len(mapped)
        ):
            return None
        # Read by name, so nothing holds the file whole (the import's file is unlinked
        # but open).
        source: Any = _path_of(file)
        if source is None:
            file.seek(0)
            source = file.read()
        columns = cls(source, separator, headers, header_map)
        try:
            columns.total = columns._count()
        except pl.exceptions.PolarsError:
            return None  # the row reader says what is wrong with it
        return columns

    def _count(self) -> int:
        """Reads the whole file (a broken one fails before anything is written); the
        number of its data records, blank ones left out as `texts` leaves them.

        Only the records whose first cell has no text once stripped as polars strips
        (a subset of what Python strips) or holds a separator only Python strips can be
        blank: those few alone are stripped whole, not every cell of the file."""
        total = 0
        first = pl.col(self._headers[0])
        maybe_blank = (first.str.strip_chars() == "").fill_null(True) | first.str.contains_any(
            list(_SEPARATORS)
        ).fill_null(False)
        for frame in self._frames():
            blank = frame.filter(maybe_blank).select(
                pl.all_horizontal(_strip(pl.col(h), exact=True).is_null() for h in self._headers)
            )
            total += frame.height - int(blank.to_series().sum())
        return total

    def _frames(self) -> Iterator[pl.DataFrame]:
        """The file's records as text columns, in order, blank ones included."""
        frame = pl.scan_csv(
            self._source,
            separator=self._separator,
            infer_schema=False,
            encoding="utf8",
            has_header=True,
        )
        for batch in frame.collect_batches(chunk_size=_READ_ROWS):
            if batch.columns != self._headers:
                raise pl.exceptions.ComputeError("headers read differently")
            yield batch

    def texts(self) -> Iterator[pl.DataFrame]:
        """The non-blank records, a frame at a time: their line numbers (`_line`, as the
        csv module counts lines: the last line of the record) and their fields' stripped
        texts."""
        lines_before = 1  # the header
        unread = [pl.col(h) for h in self._headers if h not in self.fields.values()]
        for frame in self._frames():
            cells = [pl.col(h) for h in self._headers]
            rare = _has_rare(frame, cells)
            strip = functools.partial(_strip, exact=rare)
            if rare:
                ends = pl.sum_horizontal(
                    c.str.count_matches(_LINE_ENDS).fill_null(0) for c in cells
                )
                line = (ends + 1).cum_sum() + lines_before
            else:
                line = pl.int_range(1, pl.len() + 1, dtype=pl.Int64) + lines_before
            # A record is blank when its fields' stripped texts are all empty, and the
            # cells no field reads too: each cell stripped once.
            frame = frame.select(
                _line=line,
                _unread_blank=pl.all_horizontal(
                    pl.lit(True), *(strip(c).is_null() for c in unread)
                ),
                **{f: strip(pl.col(h)) for f, h in self.fields.items()},
            )
            lines_before = int(frame["_line"][-1]) if frame.height else lines_before
            blank = pl.col("_unread_blank") & pl.all_horizontal(
                pl.col(f).is_null() for f in self.fields
            )
            yield frame.filter(~blank).drop("_unread_blank")


# How calamine types a cell: text (or nothing), a number, a boolean. Anything else (a
# date, a time, an integer from another reader) has no text here: its row is odd.
_TEXT, _NUMBER_CELL, _BOOLEAN_CELL = 0, 1, 2
_CELL_KINDS: dict[type, int] = {
    str: _TEXT,
    type(None): _TEXT,
    float: _NUMBER_CELL,
    bool: _BOOLEAN_CELL,
}
# The kinds of fastexcel's typed columns (texts are pl.String).
_DTYPE_KINDS: dict[Any, int] = {pl.Float64: _NUMBER_CELL, pl.Boolean: _BOOLEAN_CELL}
# fastexcel warns when it reads an empty column as texts, which is what this reader
# wants: the worker's log would get a warning per empty column of every import.
logging.getLogger("fastexcel.types.dtype").setLevel(logging.ERROR)
_WHOLE_LIMIT = 1e18  # whole floats below it are exactly their Int64


class XlsxColumns(Columns):
    """The first sheet of an XLSX file read as columns; `open` says whether it can be
    (else None). The sheet is converted whole when opened (both parsers hold it in
    memory anyway; python-calamine's cells _SHEET_ROWS rows at a time), and only the
    frames are kept.

    fastexcel (calamine in Rust) hands the sheet over as Arrow columns, without a Python
    object per cell, when every column holds one kind of cell that Arrow keeps exactly
    (see _typed_sheet); any other sheet (a column of numbers and texts mixed, a date…)
    is read through python-calamine's Python cells, as before."""

    def __init__(self, names: list[str], mapping: HeaderMap) -> None:
        super().__init__()
        self._names = names
        self._mapping = mapping
        # Product field → the index of the sheet column it reads.
        self._fields = {
            field: i for i, name in enumerate(names) if (field := mapping.field(name)) is not None
        }
        self._frames: list[pl.DataFrame] = []

    @classmethod
    def open(cls, file: BinaryIO, mapping: dict[str, str] | None) -> "XlsxColumns | None":
        from python_calamine import CalamineError

        try:
            # Larger sheets stream through openpyxl, whose cells are typed otherwise.
            if is_blank(file) or check_zip(file) > XLSX_IN_MEMORY_LIMIT:
                return None
        except ImportFileError:
            return None  # the row reader raises it again
        try:
            typed = _typed_sheet(file)
            if typed is not None:
                return cls._of_typed(*typed, HeaderMap(mapping))
            return cls._of_cells(file, HeaderMap(mapping))
        except (CalamineError, pl.exceptions.PolarsError):
            return None  # the row reader says what is wrong with it

    @classmethod
    def _of(cls, header: list[Any], mapping: HeaderMap) -> "XlsxColumns | None":
        # As the row reader names a record's cells: unnamed columns are left out.
        names = ["" if h is None else str(h).strip() for h in header]
        named = [n for n in names if n]
        mapped = [f for n in named if (f := mapping.field(n)) is not None]
        if len(set(named)) != len(named) or not mapped or len(set(mapped)) != len(mapped):
            return None
        return cls(names, mapping)

    @classmethod
    def _of_typed(
        cls, header: list[str], sheet: pl.DataFrame, mapping: HeaderMap
    ) -> "XlsxColumns | None":
        columns = cls._of(header, mapping)
        if columns is None:
            return None
        kinds = {i: pl.col(f"k{i}") for i in range(len(header)) if f"k{i}" in sheet.columns}
        # Converted whole, as it is already held whole: the header is line 1.
        columns._add(sheet, kinds, 2, functools.partial(_sheet_row, sheet, header))
        return columns

    @classmethod
    def _of_cells(cls, file: BinaryIO, mapping: HeaderMap) -> "XlsxColumns | None":
        from python_calamine import CalamineWorkbook

        file.seek(0)
        with CalamineWorkbook.from_filelike(file) as workbook:
            sheet = workbook.get_sheet_by_index(0)
        rows = sheet.iter_rows()
        header = next(rows, None)
        columns = None if header is None else cls._of(header, mapping)
        if columns is None:
            return None
        first_line = 2  # the header is line 1
        while batch := list(islice(rows, _SHEET_ROWS)):
            series: dict[str, pl.Series] = {}
            kinds: dict[int, pl.Expr] = {}
            for i, cells in enumerate(_transposed(batch)):
                series[f"t{i}"], kind = _cell_series(cells)
                if kind is not None:
                    series[f"k{i}"], kinds[i] = kind, pl.col(f"k{i}")
            columns._add(pl.DataFrame(series), kinds, first_line, batch.__getitem__)
            first_line += len(batch)
        return columns

    def texts(self) -> Iterator[pl.DataFrame]:
        # As many records at a time as polars reads of a CSV file: the checks of a frame
        # cost the same whatever its size, so frames of 10,000 rows paid it five times.
        if self._frames:
            yield from pl.concat(self._frames, rechunk=False).iter_slices(_READ_ROWS)

    def _add(
        self,
        cells: pl.DataFrame,
        kinds: dict[int, pl.Expr],
        first_line: int,
        row: typing.Callable[[int], list[Any]],
    ) -> None:
        """Keeps a batch of the sheet's rows as their non-blank records' texts; the odd
        ones mapped by the row reader into `odd`. `cells` holds each column's texts
        (`t0`, `t1`…), `kinds` the kinds of the columns that are not all texts, `row`
        gives a row's cells as python-calamine gives them."""
        empty: list[pl.Expr] = []
        for i in range(len(self._names)):
            is_empty = pl.col(f"t{i}").is_null() | (pl.col(f"t{i}") == "")
            empty.append(is_empty & (kinds[i] == _TEXT) if i in kinds else is_empty)
        values: dict[str, pl.Expr] = {}
        odd: list[pl.Expr] = []
        for field, i in self._fields.items():
            if i in kinds:
                value, is_odd = _cell_text(field, pl.col(f"t{i}"), kinds[i])
                values[field], odd = value, [*odd, is_odd]
            else:
                values[field] = pl.col(f"t{i}")
        # Lazily, as the checks run, so that a number cell's float and text are made once
        # for its text and for whether it has one; by the in-memory engine, as the
        # streaming one (the default) took twice the CPU over python-calamine's batches.
        # Stripped as Python strips, always: looking for the separators only Python
        # strips cost more than stripping them.
        frame = (
            cells.lazy()
            .select(
                _line=pl.int_range(first_line, first_line + cells.height, dtype=pl.Int64),
                # As the row reader skips a row: every cell, named or not, empty.
                _blank=pl.all_horizontal(empty),
                _odd=pl.any_horizontal(odd) if odd else pl.lit(False),
                **{field: _strip(value, exact=True) for field, value in values.items()},
            )
            .filter(~pl.col("_blank"))
            .drop("_blank")
            .collect(engine="in-memory")
        )
        for line in frame.filter(pl.col("_odd"))["_line"].to_list():
            record = {n: c for n, c in zip(self._names, row(line - first_line), strict=True) if n}
            self.odd[line] = map_record(record, self._mapping)
        self._frames.append(frame.drop("_odd"))
        self.total += frame.height


def _sheet_row(cells: pl.DataFrame, header: list[str], index: int) -> list[Any]:
    """A row of a typed sheet's texts and kinds as python-calamine gives its cells (an
    empty cell as ""; a number's text is its float's shortest, exact writing)."""
    row = cells.row(index, named=True)
    values: list[Any] = []
    for i in range(len(header)):
        text, kind = row[f"t{i}"], row.get(f"k{i}", _TEXT)
        if kind == _NUMBER_CELL:
            values.append(float(text))
        elif kind == _BOOLEAN_CELL:
            values.append(text == "true")
        else:
            values.append("" if text is None else text)
    return values


def _typed_sheet(file: BinaryIO) -> tuple[list[str], pl.DataFrame] | None:
    """The first sheet's header, and its cells as texts (`t0`, `t1`…) with the kinds of
    the columns that are not all texts (`k0`…), as fastexcel reads them, when that is
    exactly what python-calamine gives (else None): every column of texts (or empty), of
    numbers or of booleans, and every header cell a text.

    fastexcel types a column by all its cells ("strict": a column of several kinds is an
    error), but counts as empty the texts it reads as missing ("NA", "null", "nan"…) and
    error cells, which become null, or NaN, in a column of numbers or booleans. Such
    columns, when they have a null or a NaN, are read again as texts (a second parse of
    the sheet, still cheaper than python-calamine's cells), which tell an empty cell
    from a text. A header cell that is not a text is named otherwise (12.0 "12", a date
    not at all), and repeated names are renamed (`EAN_1`): such headers are read by
    python-calamine."""
    import fastexcel

    source: Any = _path_of(file)
    if source is None:
        file.seek(0)
        source = file.read()
    try:
        reader = fastexcel.read_excel(source)
        loaded = reader.load_sheet(
            0, header_row=0, skip_rows=0, schema_sample_rows=None, dtype_coercion="strict"
        )
        # The columns typed when loading (every column, none being chosen), where
        # available_columns() would type them all again over every row.
        infos = loaded.selected_columns
        sheet = pl.DataFrame(loaded)
        del loaded  # its parsed cells, before a second parse
        header = [info.name for info in infos]
        if any(info.column_name_from != "looked_up" for info in infos) or _renamed(header):
            return None
        cells: dict[str, pl.Series] = {}
        unsure: list[int] = []  # columns where a null or NaN may be a text
        for i, series in enumerate(sheet.iter_columns()):
            if series.dtype == pl.String:
                cells[f"t{i}"] = series
                continue
            if series.dtype not in _DTYPE_KINDS:
                return None
            typed = series.fill_nan(None) if series.dtype == pl.Float64 else series
            cells[f"t{i}"] = typed.cast(pl.String)
            kind = _DTYPE_KINDS[series.dtype]
            cells[f"k{i}"] = pl.repeat(kind, len(series), dtype=pl.Int8, eager=True)
            if typed.null_count():
                unsure.append(i)
        if unsure:
            texts = reader.load_sheet(
                0, header_row=0, skip_rows=0, use_columns=unsure, dtypes="string"
            )
            for i, text in zip(unsure, pl.DataFrame(texts).iter_columns(), strict=True):
                kept = pl.DataFrame({"typed": cells[f"t{i}"], "text": text}).select(
                    t=pl.coalesce("typed", "text"),
                    k=pl.when(pl.col("typed").is_null()).then(_TEXT).otherwise(cells[f"k{i}"]),
                )
                cells[f"t{i}"], cells[f"k{i}"] = kept["t"], kept["k"].cast(pl.Int8)
    except fastexcel.FastExcelError:
        return None
    return header, pl.DataFrame(cells)


def _renamed(header: list[str]) -> bool:
    """Whether a name may not be the header cell's own text: a number's, or a repeated
    name's that fastexcel renamed."""
    names = set(header)
    for name in header:
        try:
            float(name)
            return True
        except ValueError:
            pass
        stem, _, number = name.rpartition("_")
        if number.isdigit() and stem in names:
            return True
    return False


def _transposed(batch: list[list[Any]]) -> list[list[Any]]:
    """The batch's columns: slices of its cells laid end to end (a fifth of the CPU of
    `zip(*batch)`, which steps through ten thousand row iterators for each cell)."""
    width = len(batch[0])
    if set(map(len, batch)) != {width}:
        raise ValueError("the sheet's rows differ in width")  # calamine pads them
    cells = list(chain.from_iterable(batch))
    return [cells[i::width] for i in range(width)]


def _cell_series(cells: list[Any]) -> tuple[pl.Series, pl.Series | None]:
    """A sheet column's cells as texts (polars writes numbers and booleans), and their
    kinds (None when every cell is a text)."""
    if set(map(type, cells)) <= {str, type(None)}:
        return pl.Series(cells, dtype=pl.String), None
    kinds = pl.Series(list(map(_CELL_KINDS.get, map(type, cells))), dtype=pl.Int8)
    return pl.Series(cells, dtype=pl.String, strict=False), kinds


def _cell_text(field: str, text: pl.Expr, kind: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The text a field's cell reads as in the CSV path, from its kind and polars' text
    of it, and whether the cell has none (odd): the row reader's FieldReader.from_value
    made a text of it, or a value that the same text reads back as."""
    kinds = field_kinds(ProductFields.model_fields[field].annotation)
    numeric = bool(kinds & {int, float})
    words_numbers = numeric or str in kinds  # a text field reads a number as its digits
    values = [pl.when(kind == _TEXT).then(text)]
    readable = kind == _TEXT
    if words_numbers:
        number = text.cast(pl.Float64, strict=False)
        whole = (number == number.floor()) & (number.abs() < _WHOLE_LIMIT)
        # Python writes small numbers with an exponent ("1e-07"), polars not alike. The
        # cast runs on every number (lazily, 1e20 would fail a strict one): `whole`
        # keeps those it writes exactly.
        number_text = (
            pl.when(whole)
            .then(number.cast(pl.Int64, strict=False).cast(pl.String))
            .when(~text.str.contains("e", literal=True))
            .then(text)
        )
        values.append(pl.when(kind == _NUMBER_CELL).then(number_text))
        readable = readable | ((kind == _NUMBER_CELL) & number_text.is_not_null())
    if bool in kinds:
        values.append(pl.when(kind == _BOOLEAN_CELL).then(text))
        readable = readable | (kind == _BOOLEAN_CELL)
    return pl.coalesce(values), ~readable.fill_null(False)


def read_chunks(
    columns: Columns, plan: RunPlan, size: int, keys: FileKeys
) -> Iterator["ColumnChunk"]:
    """The file's chunks of `size` records for an import run, after the `plan.checkpoint`
    records already committed (whose EANs alone are remembered, for repeats)."""
    skip = plan.checkpoint
    pending: list[pl.DataFrame] = []
    held = 0
    checks: list[pl.Expr] | None = None
    for texts in columns.texts():
        if skip:
            keys.add(_ean_rows(texts.head(skip), columns))
            texts, skip = texts.slice(skip), max(0, skip - texts.height)
        # The expressions are built once per file: over a frame of 10,000 rows, building
        # them cost half as much as running them.
        if checks is None:
            checks = _checks(texts.columns, plan.options, columns)
        pending.append(texts.lazy().with_columns(checks).collect())
        held += texts.height
        while held >= size:
            whole = pl.concat(pending)
            yield _chunk(whole.head(size), plan, keys, columns)
            pending, held = [whole.slice(size)], held - size
    if held:
        yield _chunk(pl.concat(pending), plan, keys, columns)


def _ean_rows(texts: pl.DataFrame, columns: Columns) -> list[Row]:
    if "ean" not in texts.columns:
        return []
    eans = texts["ean"].to_list()
    if columns.odd:
        lines = texts["_line"].to_list()
        eans = [
            ean if (odd := columns.odd.get(line)) is None else odd.get("ean")
            for line, ean in zip(lines, eans, strict=True)
        ]
    return [Row(0, {"ean": ean}) for ean in eans if ean is not None]


_TYPED = "typed "  # prefix of the columns holding fields' typed values


def _checks(names: list[str], options: WriteOptions, columns: Columns) -> list[pl.Expr]:
    """What a frame of texts is checked with: each field's typed value and whether the
    row passes every check (`_clean`; never for an odd row)."""
    fields = [c for c in names if c != "_line"]
    typed = [_typed(f, pl.col(f)) for f in fields]
    clean = pl.all_horizontal(ok for _, ok in typed)
    if "ean" not in fields:
        clean = pl.lit(False)
    elif options.ean_lengths is not None:
        lengths = pl.col("ean").str.len_chars().is_in(list(options.ean_lengths))
        clean = clean & pl.col("ean").is_not_null() & lengths
    else:
        clean = clean & pl.col("ean").is_not_null()
    if columns.odd:
        clean = clean & ~pl.col("_line").is_in(list(columns.odd))
    # Run lazily, so that polars computes each shared subexpression (a column's number,
    # its shape) once: eagerly, every use of it runs again (3 times the CPU).
    return [
        *(value.alias(_TYPED + f) for f, (value, _) in zip(fields, typed, strict=True)),
        clean.fill_null(False).alias("_clean"),
    ]


def _chunk(frame: pl.DataFrame, plan: RunPlan, keys: FileKeys, columns: Columns) -> "ColumnChunk":
    """What import_runs.prepare_chunk makes of a chunk, from its checked columns: rows
    that pass every vector check stay columns, the others become rows and go through
    the per-row checks."""
    fields = [
        c for c in frame.columns if c != "_line" and c != "_clean" and not c.startswith(_TYPED)
    ]
    failed = frame.select(pl.arg_where(~pl.col("_clean"))).to_series().to_list()
    others = {
        i: Row(texts[0], columns.row_data(texts[0], fields, tuple(texts[1:])))
        for i, texts in zip(failed, frame.select("_line", *fields)[failed].rows(), strict=True)
    }
    eans: list[str | None] = frame["ean"].to_list() if "ean" in fields else [None] * frame.height
    for i, row in others.items():
        eans[i] = ean_of(row)
    repeated = frozenset(keys.repeated(eans))
    before = sorted(repeated)
    checks = {
        i: check_item(
            i - bisect.bisect(before, i), WriteItem(dict(row.data)), plan.options,
            strict_ean=plan.caller.strict_ean,
        )
        for i, row in others.items()
        if i not in repeated
    }  # fmt: skip
    typed = frame.select("_line", "_clean", *(pl.col(_TYPED + f).alias(f) for f in fields))
    return ColumnChunk(typed, others, checks, repeated, plan.options.default_supplier_code)


class ColumnChunk:
    """A chunk kept as columns from the file to the staging table's COPY (issue 19,
    figure 1b): the rows that pass every vector check stay in `frame` (their line,
    `_clean`, each field's typed value), handed to the writer process as Arrow; only the
    others are Python objects (`others`, and their per-row `checks` unless repeated).
    The row forms that the row writer and the halving of a chunk read (rows, written,
    checked) are made when asked for."""

    def __init__(
        self,
        frame: pl.DataFrame,
        others: dict[int, Row],
        checks: dict[int, Checked],
        repeated: frozenset[int],
        default_supplier: str | None,
    ) -> None:
        self.frame = frame
        self.others = others
        self.checks = checks
        self.repeated = repeated
        self.default_supplier = default_supplier

    @property
    def size(self) -> int:
        return self.frame.height

    @property
    def fields(self) -> list[str]:
        return [c for c in self.frame.columns if c != "_line" and c != "_clean"]

    def row(self, i: int) -> Row:
        if (other := self.others.get(i)) is not None:
            return other
        return self._row(self.frame.row(i))

    def _row(self, values: tuple[Any, ...]) -> Row:
        line, _clean, *typed = values
        return Row(line, {f: v for f, v in zip(self.fields, typed, strict=True) if v is not None})

    @functools.cached_property
    def rows(self) -> list[Row]:
        return [self.others.get(i) or self._row(v) for i, v in enumerate(self.frame.rows())]

    @property
    def written(self) -> list[Row]:
        return [row for i, row in enumerate(self.rows) if i not in self.repeated]

    def written_row(self, index: int) -> Row:
        i = index
        for repeated in sorted(self.repeated):
            if repeated > i:
                break
            i += 1
        return self.row(i)

    @functools.cached_property
    def checked(self) -> list[Checked]:
        checked: list[Checked] = []
        for i, row in enumerate(self.rows):
            if i in self.repeated:
                continue
            if (check := self.checks.get(i)) is not None:
                checked.append(check)
                continue
            given = row.data
            if self.default_supplier and "supplier_code" not in given:
                given = {**given, "supplier_code": self.default_supplier}
            checked.append(
                CheckedItem(len(checked), given["ean"], given.get("reference"), given, None, ())
            )
        return checked

    @functools.cached_property
    def _clean(self) -> pl.DataFrame:
        """The written rows that passed every vector check: `_index` and their fields
        (read for the chunk's references, then for the merge)."""
        index = pl.int_range(pl.len(), dtype=pl.Int64)
        kept = pl.col("_clean")
        if self.repeated:
            repeated = index.is_in(list(self.repeated))
            index, kept = index - repeated.cast(pl.Int64).cum_sum(), kept & ~repeated
        clean = self.frame.select(index.alias("_index"), *self.fields, _kept=kept)
        clean = clean.filter("_kept").drop("_kept")
        if self.default_supplier:
            supplier = pl.lit(self.default_supplier)
            if "supplier_code" in clean.columns:
                supplier = pl.col("supplier_code").fill_null(supplier)
            clean = clean.with_columns(supplier.alias("supplier_code"))
        return clean

    def _checked_others(self) -> list[Checked]:
        return [self.checks[i] for i in sorted(self.checks)]

    def given(self, field: str) -> set[str]:
        clean = self._clean
        texts: set[str] = set()
        if field in clean.columns:
            texts.update(clean[field].drop_nulls().unique().to_list())
        for item in self._checked_others():
            if isinstance(item, CheckedItem) and (text := item.given.get(field)):
                texts.add(text)
        return texts

    def merge_items(self) -> Items | None:
        others = Items.of(self._checked_others())
        return None if others is None else others.joined(self._clean)


def _mapped(fields: list[str], texts: tuple[Any, ...]) -> dict[str, Any]:
    """What the row reader makes of a row's stripped texts."""
    data: dict[str, Any] = {}
    for field, text in zip(fields, texts, strict=True):
        if text is None:
            continue
        convert = READERS[field].from_text
        data[field] = text if convert is None else convert(text)
    return data
