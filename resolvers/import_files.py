"""Reading import files: CSV, XLSX, JSON and XML records, mapped onto product fields.

Records are read from a file and yielded one at a time, so a million-row file is never
held whole, nor as a million Python dicts. A broken file raises ImportFileError with a
reason a user can act on.

XLSX, measured here (15 columns): python-calamine reads 50,000 rows in 0.9 s where
openpyxl in read_only mode takes 9.9 s, but calamine loads the whole sheet first
(200,000 rows, 145 MB of sheet XML: +270 MB of memory) while openpyxl streams in
constant memory. So calamine reads sheets up to XLSX_IN_MEMORY_LIMIT unpacked, and
larger ones stream through openpyxl. The zip directory is checked before either
reads anything, so a small file cannot unpack into gigabytes (zip bomb).
"""

import codecs
import csv
import io
import json
import re
import types
import typing
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from resolvers.ean import CHECKSUM_MESSAGE, FORMAT_MESSAGE, check_ean
from resolvers.errors import FieldError
from resolvers.product_fields import ProductFields, check_fields

FILE_TYPES = ("csv", "xlsx", "json", "xml")
# Uncompressed XLSX content allowed, in total and relative to the compressed size.
MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_XLSX_RATIO = 200
# Up to this unpacked size an XLSX is read by calamine (fast, in memory, ~2× the size):
# 100,000 rows of 15 columns (84 MB) still are, for at most ~180 MB more in the process
# that reads it (an import's reader process, or the API for a preview).
XLSX_IN_MEMORY_LIMIT = 96 * 1024 * 1024
_READ_BLOCK = 1 << 20


class ImportFileError(Exception):
    def __init__(self, message: str, code: str = "invalid_file") -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __reduce__(self) -> tuple[type["ImportFileError"], tuple[str, str]]:
        # Raised in the process that reads the file, reported by the one that writes.
        return (ImportFileError, (self.message, self.code))


@dataclass(slots=True)
class Row:
    """One data record: its number in the file (header = line 1), product fields and values."""

    number: int
    data: dict[str, Any]

    def __reduce__(self) -> tuple[type["Row"], tuple[int, dict[str, Any]]]:
        # An import hands every row to its writer process; the pickling dataclasses give
        # slotted classes walks fields() for each one (measured: 2 µs a row across both).
        return (Row, (self.number, self.data))


@dataclass(frozen=True, slots=True)
class RowIssue:
    level: str
    field: str
    message: str
    value: str | None


def file_type_of(file_name: str) -> str | None:
    suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    return suffix if suffix in FILE_TYPES else None


# ---------------------------------------------------------------- header mapping


def _normalise(header: str) -> str:
    """'Prix  TTC', 'prix_ttc', 'PRIX-TTC' and 'Prix TTC ' are the same header."""
    text = unicodedata.normalize("NFKD", str(header)).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_\-.'’]+", " ", text).strip().lower()


_FRENCH_HEADERS: dict[str, tuple[str, ...]] = {
    "ean": ("ean", "ean13", "ean 13", "code ean", "gencod", "gencode"),
    "name": ("titre", "nom", "nom du produit", "designation", "libelle", "title"),
    "cost_price": ("prix ht", "prix achat", "prix d achat", "prix achat ht"),
    "price": ("prix ttc", "prix", "prix de vente", "prix vente", "pvc"),
    "brand_name": ("marque", "brand"),
    "weight": ("poids", "poids kg"),
    "stock": ("stock", "quantite", "qte", "quantity", "qty"),
    "reference": ("reference", "ref", "sku", "reference fournisseur"),
    "description": ("description", "description longue"),
    "short_description": ("description courte", "resume"),
    "supplier_code": ("code fournisseur",),
    "category_name": ("categorie", "category", "famille"),
    "tax_rate": ("tva", "taux tva", "taux de tva"),
    "width": ("largeur",),
    "height": ("hauteur",),
    "depth": ("profondeur", "longueur"),
    "color": ("couleur",),
    "size": ("taille",),
    "material": ("matiere",),
    "country_of_origin": ("pays d origine", "pays origine"),
    "status": ("statut",),
}
AUTO_HEADERS: dict[str, str] = {
    **{_normalise(name): name for name in ProductFields.model_fields},
    **{alias: field for field, aliases in _FRENCH_HEADERS.items() for alias in aliases},
}


def validate_mapping(mapping: object) -> list[FieldError]:
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        return [FieldError("mapping", "objet attendu : colonne du fichier → champ produit")]
    unknown = sorted(v for v in mapping.values() if v not in ProductFields.model_fields)
    if unknown:
        return [FieldError("mapping", f"champ produit inconnu : {', '.join(unknown)}", "unknown")]
    return []


class HeaderMap:
    """File column → product field, from the given mapping or recognised automatically."""

    def __init__(self, mapping: dict[str, str] | None) -> None:
        self._given = {_normalise(k): v for k, v in mapping.items()} if mapping else None
        # Column as read → how it reads, or None for a column that maps to nothing.
        self.readers: dict[Any, FieldReader | None] = {}

    def field(self, header: object) -> str | None:
        reader = self.reader(header)
        return None if reader is None else reader.field

    def reader(self, header: Any) -> "FieldReader | None":
        if header not in self.readers:
            table = self._given if self._given is not None else AUTO_HEADERS
            field = table.get(_normalise(str(header)))
            self.readers[header] = None if field is None else READERS[field]
        return self.readers[header]


# ---------------------------------------------------------------- value conversion


def field_kinds(annotation: Any) -> set[type]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return field_kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(field_kinds(arg) for arg in typing.get_args(annotation)))
    return {annotation} if isinstance(annotation, type) else set()


BOOLEANS = {
    **dict.fromkeys(("1", "true", "vrai", "oui", "yes", "o", "y", "x"), True),
    **dict.fromkeys(("0", "false", "faux", "non", "no", "n"), False),
}
_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_SPACES = str.maketrans("", "", " \u00a0\u202f")


@dataclass(frozen=True, slots=True)
class FieldReader:
    """How one product field reads a file cell.

    French files write decimals with a comma ('5,00') and thousands with spaces;
    spreadsheets store codes (EAN, reference) as numbers. Built once per field,
    because an import reads millions of cells: plain text fields (`from_text` None)
    only strip, in map_record itself.
    """

    field: str
    from_text: Callable[[str], Any] | None  # given a stripped, non-empty text
    from_value: Callable[[Any], Any]  # given a spreadsheet's number, date or boolean


def _reader(field: str, kinds: set[type]) -> FieldReader:
    boolean = bool in kinds
    numeric = bool(kinds & {float, int})
    integral = int in kinds and float not in kinds
    text_only = str in kinds and not numeric

    def from_text(value: str) -> Any:
        if boolean and (flag := BOOLEANS.get(value.lower())) is not None:
            return flag
        if numeric:
            # Plain digits first (stock, sizes, rates): what _NUMBER matches with nothing
            # to strip or replace, at a third of the cost; a million-row file has millions.
            if value.isdecimal():
                number = float(value)
            else:
                compact = value.translate(_SPACES)
                if not _NUMBER.match(compact):
                    return value
                number = float(compact.replace(",", "."))
            return int(number) if integral and number.is_integer() else number
        return value

    def from_value(value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if text_only:
                whole = isinstance(value, float) and value.is_integer()
                return str(int(value)) if whole else str(value)
            if integral and isinstance(value, float) and value.is_integer():
                return int(value)
        return value

    return FieldReader(field, from_text if boolean or numeric else None, from_value)


READERS: dict[str, FieldReader] = {
    name: _reader(name, field_kinds(info.annotation))
    for name, info in ProductFields.model_fields.items()
}


def map_record(record: dict[Any, Any], headers: HeaderMap) -> dict[str, Any]:
    """The record's cells as product fields; empty cells and unknown columns left out."""
    data: dict[str, Any] = {}
    readers = headers.readers
    for column, value in record.items():
        reader = readers[column] if column in readers else headers.reader(column)
        if reader is None or value is None:
            continue
        if value.__class__ is str:
            value = value.strip()
            if not value:
                continue
            if reader.from_text is not None:
                value = reader.from_text(value)
        else:
            value = reader.from_value(value)
        data[reader.field] = value
    return data


# ---------------------------------------------------------------- readers


def csv_encoding(file: BinaryIO) -> str:
    head = file.read(_READ_BLOCK)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in head:
        raise ImportFileError(
            "encodage non pris en charge : UTF-8 ou Windows-1252 attendu (UTF-16 ?)", "encoding"
        )
    # Validate block by block instead of decoding a huge file into one string.
    for encoding in ("utf-8", "cp1252"):
        file.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while block := file.read(_READ_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ImportFileError("encodage non reconnu : UTF-8 ou Windows-1252 attendu", "encoding")


def _csv_records(file: BinaryIO) -> Iterator[tuple[int, dict[Any, Any]]]:
    encoding = csv_encoding(file)
    file.seek(0)
    text = io.TextIOWrapper(file, encoding=encoding, newline="")
    first_line = text.readline()
    # The delimiter is whichever of ; , and tab the header uses most.
    delimiter = max((";", ",", "\t"), key=first_line.count)
    text.seek(0)
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ImportFileError("fichier vide : aucune ligne d'en-tête", "empty_file")
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise ImportFileError(
                    f"ligne {reader.line_num} : {len(cells)} colonnes pour "
                    f"{len(header)} en-têtes (fichier tronqué ou mal délimité ?)",
                    "malformed",
                )
            yield reader.line_num, dict(zip(header, cells, strict=False))
    except csv.Error as exc:
        raise ImportFileError(
            f"CSV illisible ligne {reader.line_num} : {exc} (fichier tronqué ?)", "malformed"
        ) from exc
    finally:
        # The wrapper must not close the caller's file when it is collected.
        if not file.closed:
            text.detach()


def check_zip(file: BinaryIO) -> int:
    """Refuse broken archives and zip bombs; the total uncompressed size otherwise."""
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as exc:
        raise ImportFileError("fichier XLSX illisible (archive ZIP invalide ou tronquée)") from exc
    with archive:
        entries = archive.infolist()
        total = sum(e.file_size for e in entries)
        compressed = sum(e.compress_size for e in entries) or 1
        if total > MAX_XLSX_UNCOMPRESSED or (
            total > (1 << 20) and total / compressed > MAX_XLSX_RATIO
        ):
            raise ImportFileError(
                "fichier XLSX refusé : contenu décompressé démesuré (bombe ZIP ?)", "zip_bomb"
            )
        if "xl/workbook.xml" not in archive.namelist():
            raise ImportFileError("fichier XLSX invalide : classeur Excel introuvable")
    return total


def _xlsx_records(file: BinaryIO, parsed: "_ParsedSheet") -> Iterator[tuple[int, dict[Any, Any]]]:
    unpacked = check_zip(file)
    file.seek(0)
    in_memory = unpacked <= XLSX_IN_MEMORY_LIMIT
    try:
        rows = parsed.rows(file) if in_memory else _openpyxl_rows(file)
        header = next(rows, None)
        if header is None or not any(h is not None and str(h).strip() for h in header):
            raise ImportFileError("fichier vide : aucune ligne d'en-tête", "empty_file")
        names = ["" if h is None else str(h).strip() for h in header]
        for number, cells in enumerate(rows, start=2):
            if all(c is None or c == "" for c in cells):
                continue
            yield number, {n: c for n, c in zip(names, cells, strict=False) if n}
    except ImportFileError:
        raise
    except Exception as exc:  # both readers raise their own error types for broken sheets
        raise ImportFileError(f"fichier XLSX illisible : {exc}") from exc


class _ParsedSheet:
    """The first sheet of a workbook, parsed by calamine once however often it is read:
    parsing is most of the time a read takes (a second for 100,000 rows)."""

    def __init__(self) -> None:
        self._sheet: Any = None

    def rows(self, file: BinaryIO) -> Iterator[Sequence[Any]]:
        from python_calamine import CalamineWorkbook

        if self._sheet is None:
            with CalamineWorkbook.from_filelike(file) as workbook:
                self._sheet = workbook.get_sheet_by_index(0)
        yield from self._sheet.iter_rows()


def _openpyxl_rows(file: BinaryIO) -> Iterator[Sequence[Any]]:
    import openpyxl

    # read_only streams the sheet XML; openpyxl parses through defusedxml when installed.
    workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    try:
        yield from workbook.worksheets[0].iter_rows(values_only=True)
    finally:
        workbook.close()


class _TextWindow:
    """A file's text decoded block by block, keeping only what follows `position`."""

    def __init__(self, file: BinaryIO, encoding: str) -> None:
        self._file = file
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._ended = False
        self.text = ""
        self.position = 0

    def more(self) -> bool:
        """Read the next block; False at the end of the file."""
        if self._ended:
            return False
        block = self._file.read(_READ_BLOCK)
        self._ended = not block
        try:
            decoded = self._decoder.decode(block, final=self._ended)
        except UnicodeDecodeError as exc:
            raise ImportFileError("JSON illisible : encodage UTF-8 attendu", "encoding") from exc
        self.text = self.text[self.position :] + decoded
        self.position = 0
        return True

    def next_char(self) -> str | None:
        """The next character that is not white space (left unread); None at the end."""
        while True:
            text, position = self.text, self.position
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            self.position = position
            if position < len(text):
                return text[position]
            if not self.more():
                return None


def _json_records(file: BinaryIO) -> Iterator[tuple[int, dict[Any, Any]]]:
    # Objects are decoded one by one from the array, never as one big list nor one big text.
    window = _TextWindow(file, "utf-8-sig")
    decoder = json.JSONDecoder()
    first = window.next_char()
    if first is None:
        raise ImportFileError("fichier vide", "empty_file")
    if first != "[":
        raise ImportFileError("JSON invalide : un tableau d'objets est attendu", "malformed")
    window.position += 1
    number = 0
    while (char := window.next_char()) != "]":
        if char is None:
            raise ImportFileError(
                "JSON invalide : tableau non terminé (fichier tronqué ?)", "malformed"
            )
        while True:
            try:
                record, window.position = decoder.raw_decode(window.text, window.position)
                break
            except json.JSONDecodeError as exc:
                # Perhaps only cut by the end of the block read so far.
                if not window.more():
                    raise ImportFileError(
                        f"JSON invalide (élément {number + 1}) : {exc.msg} (fichier tronqué ?)",
                        "malformed",
                    ) from exc
            except RecursionError as exc:
                # The decoder recurses once per level: a record nested thousands deep
                # is no product, and must fail the file rather than the worker.
                raise ImportFileError(
                    f"JSON invalide (élément {number + 1}) : imbrication trop profonde",
                    "malformed",
                ) from exc
        number += 1
        if not isinstance(record, dict):
            raise ImportFileError(f"JSON invalide : l'élément {number} n'est pas un objet")
        yield number, record
        if window.next_char() == ",":
            window.position += 1


def _xml_records(file: BinaryIO) -> Iterator[tuple[int, dict[Any, Any]]]:
    """Flat records: each child of the root is a record, its children (or attributes) fields.

    defusedxml refuses DTD entities and external references, so billion-laughs and
    XXE files fail instead of expanding.
    """
    depth = 0
    number = 0
    root: Any = None
    record: dict[str, Any] = {}
    try:
        for event, element in iterparse(file, events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 1:
                    root = element
                elif depth == 2:
                    record = dict(element.attrib)
                continue
            if depth == 3:
                record[_local(element.tag)] = (element.text or "").strip()
            elif depth == 2:
                number += 1
                yield number, record
                root.clear()  # drop finished records: constant memory
            depth -= 1
    except DefusedXmlException as exc:
        raise ImportFileError(
            "XML refusé : entités et DTD interdites (expansion d'entités, entités externes)",
            "xml_forbidden",
        ) from exc
    except ParseError as exc:
        raise ImportFileError(f"XML invalide : {exc} (fichier tronqué ?)", "malformed") from exc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# XLSX is read apart: its reader keeps the parsed sheet (see FileRecords).
_READERS = {"csv": _csv_records, "json": _json_records, "xml": _xml_records}


def _records(
    file: BinaryIO, file_type: str, headers: HeaderMap, parsed: _ParsedSheet
) -> Iterator[tuple[int, dict[Any, Any]]]:
    """The file's raw records; it fails unless the first one has a column we know."""
    if is_blank(file):
        raise ImportFileError("fichier vide", "empty_file")
    recognised = False
    raw = _xlsx_records(file, parsed) if file_type == "xlsx" else _READERS[file_type](file)
    for number, record in raw:
        if not recognised:
            if not any(headers.field(column) for column in record):
                raise ImportFileError(
                    "aucune colonne reconnue : donnez un mapping colonne → champ produit "
                    f"(colonnes lues : {', '.join(map(str, list(record)[:10]))})",
                    "no_columns",
                )
            recognised = True
        yield number, record


def is_blank(file: BinaryIO) -> bool:
    """Whether the file holds nothing but white space; read from the start again after."""
    try:
        while block := file.read(_READ_BLOCK):
            if block.strip():
                return False
        return True
    finally:
        file.seek(0)


class FileRecords:
    """A file's records, counted and then read (an import analyses the whole file before
    it writes anything): a spreadsheet parsed in memory is parsed once for both."""

    def __init__(
        self, file: BinaryIO, file_type: str, mapping: dict[str, str] | None = None
    ) -> None:
        self._file = file
        self._file_type = file_type
        self._headers = HeaderMap(mapping)
        self._parsed = _ParsedSheet()

    def _records(self) -> Iterator[tuple[int, dict[Any, Any]]]:
        self._file.seek(0)
        return _records(self._file, self._file_type, self._headers, self._parsed)

    def count(self) -> int:
        """Reads the whole file (so a broken one fails here) without converting values."""
        return sum(1 for _ in self._records())

    def rows(self, *, eans_only: int = 0) -> Iterator[Row]:
        """Every data record of the file, mapped onto product fields, in file order.

        The first `eans_only` rows carry their EAN alone: a run that resumes after them
        only needs to know which EANs they had, and a million rows in, mapping them whole
        would cost seconds.
        """
        headers = self._headers
        records = self._records()
        for number, record in islice(records, eans_only):
            yield Row(number=number, data=_ean_only(record, headers))
        for number, record in records:
            yield Row(number=number, data=map_record(record, headers))


def _ean_only(record: dict[Any, Any], headers: HeaderMap) -> dict[str, Any]:
    return map_record({c: v for c, v in record.items() if headers.field(c) == "ean"}, headers)


def validate_row(row: Row, *, strict_ean: bool) -> list[RowIssue]:
    """The checks the writer makes on one row alone (used by the preview)."""
    given, errors = check_fields(row.data, drop_nulls=True)
    issues = [RowIssue("error", e.field, e.message, _text(row.data.get(e.field))) for e in errors]
    if given is None:
        return issues
    ean = given.get("ean")
    if ean is None:
        issues.append(RowIssue("error", "ean", "champ obligatoire", None))
        return issues
    check = check_ean(ean)
    if not check.well_formed:
        issues.append(RowIssue("error", "ean", FORMAT_MESSAGE, ean))
    elif not check.checksum_valid:
        level = "error" if strict_ean else "warning"
        issues.append(RowIssue(level, "ean", CHECKSUM_MESSAGE, ean))
    return issues


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
