"""The columnar CSV and XLSX readers make of every file exactly what the row reader
makes of it: the same rows, line numbers, values, and the same checked items or
rejections."""

import datetime
import io
import logging
import uuid
import zipfile
from itertools import islice
from typing import Any

import polars as pl
import pytest

from pim.auth import Caller
from resolvers import import_runs
from resolvers.import_columns import (
    CsvColumns,
    XlsxColumns,
    _typed_sheet,
    open_columns,
    read_chunks,
)
from resolvers.import_files import FileRecords, HeaderMap
from resolvers.product_writes import Checked, CheckedItem, WriteOptions
from tests.import_files import xlsx_bytes, zip_bomb

HEADER = "EAN;Titre;Prix TTC;Stock;Poids;Statut;Réf;Ignorée;Actif\n"
LINES = [
    "4006381333931;Perceuse;12,50;5;1,5;active;REF-1;x;oui",
    "  4006381333931 ;Doublon;1;1;1;;;;",  # the same EAN again, spaces around
    "",  # an empty line
    ";;;;;;;;",  # a blank record
    '5901234123457;"Deux\nlignes";1 234,99;0;0;inactive;;;non',  # a quoted line break
    "5901234123458;Mauvais chiffre de contrôle;3;1;;;;;",
    "12345;EAN trop court;3;1;;;;;",
    ";Sans EAN;3;1;;;;;",
    "4012345678901;Stock négatif;3;-1;;;;;",
    "4012345678918;Stock décimal;3;1,5;;;;;",
    "4012345678925;Stock démesuré;3;99999999999;;;;;",
    "4012345678932;Prix au millième;3,125;1;;;;;",
    "4012345678949;Prix en texte;douze;1;;;;;",
    "4012345678956;Statut inconnu;3;1;;perdu;;;",
    "4012345678963;Booléen inconnu;3;1;;;;;peut-être",
    "4012345678970;" + "T" * 300 + ";3;1;;;;;",
    "4012345678994;Prix 1e3;1e3;1;;;;;",
    "40123456789;Onze chiffres;3;1;;;;;",
    "04012345678901;GTIN-14;3;1;;;;;",
    "96385074;EAN-8;3;1;;;;;",
    "4012345679007;Poids énorme;3;1;100000;;;;",
    "4012345679014;\x1fSéparateur;3;1;;;;;",
    # Numbers at the edges of their checks, which run as vectors (lazily, shared parts
    # once): each must read and fail as the row reader reads it.
    "4012345679021;Prix négatif;-3,5;1;;;;;",
    "4012345679038;Prix signé;+3,5;+2;-0;;;;",
    "4012345679045;Espaces de milliers;1\u00a0234,5;1\u202f000;1 0;;;;",
    "4012345679052;Chiffres arabes;\u0663;\u0661\u0662;\u0664,\u0665;;;;",
    "4012345679069;Plein chiffres;\uff13;\uff11;;;;;",
    "4012345679076;Formes partielles;3,;,5;.5;;;;",
    "4012345679083;Non-nombres;inf;nan;NaN;;;;",
    "4012345679090;Stock au plafond;999999,99;2147483647;99999,99;;;;",
    "4012345679106;Stock au-delà;999999,995;2147483648;99999,991;;;;",
    "4012345679113;Entier décimal;1.0;1,0;1,00;;;;",
    "4012345679120;Blancs;   ;\t;\u00a0;;;;",
    "4012345679137;Énorme;1" + "0" * 400 + ";1" + "0" * 30 + ";1e400;;;;",
    # Decimal commas read as points, in the same pass as the thousands separators.
    "4012345679144;Deux séparateurs;1,000,50;1.000,5;1 ,5;;;;",
    "4012345679151;Virgule et point;1.000,5;2,;0,5.;;;;",
    # EANs at the edges of the check digit's vector check.
    "00000000000000;Zéros;1;1;;;;;",
    "00000096385074;EAN-8 en GTIN-14;1;1;;;;;",
    "+400638133393;Signé;1;1;;;;;",
    "4006381333932;Chiffre faux;1;1;;;;;",
    "\u0664\u0660\u0660\u0666\u0663\u0668\u0661\u0663\u0663\u0663\u0669\u0663\u0661;Arabe;1;1;;;;;",
    "99999999999997;Plus grand GTIN;1;1;;;;;",
]


def _plan(
    strict: bool, supplier: str | None = None, checkpoint: int = 0, file_type: str = "csv"
) -> import_runs.RunPlan:
    caller = Caller(
        account_id=uuid.uuid4(), account_name="a", key_id=uuid.uuid4(), key_name="k",
        scopes=frozenset({"products:write"}), strict_ean=strict,
    )  # fmt: skip
    options = WriteOptions(default_supplier_code=supplier)
    return import_runs.RunPlan(uuid.uuid4(), caller, file_type, None, checkpoint, options, False, 0)


def _row_chunks(content: bytes, plan: import_runs.RunPlan, size: int) -> list[import_runs.Chunk]:
    records = FileRecords(io.BytesIO(content), plan.file_type)
    rows = records.rows(eans_only=plan.checkpoint)
    keys = import_runs.FileKeys()
    keys.add(islice(rows, plan.checkpoint))
    chunks = []
    while batch := list(islice(rows, size)):
        chunks.append(import_runs.prepare_chunk(plan, batch, keys))
    return chunks


def _item(item: Checked) -> object:
    # What an item says, not the order its fields were given in.
    return item.__reduce__()[1] if isinstance(item, CheckedItem) else repr(item)


def _shape(chunks: list[import_runs.Chunk]) -> list[tuple[object, ...]]:
    return [
        (
            [(r.number, r.data) for r in chunk.rows],
            sorted(chunk.repeated),
            [(r.number, r.data) for r in chunk.written],
            [_item(item) for item in chunk.checked],
        )
        for chunk in chunks
    ]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("size", [3, 100])
@pytest.mark.parametrize("checkpoint", [0, 4])
def test_columns_read_every_row_as_the_row_reader_does(
    strict: bool, size: int, checkpoint: int
) -> None:
    content = (HEADER + "\n".join(LINES) + "\n").encode()
    plan = _plan(strict, supplier="FOURN", checkpoint=checkpoint)
    columns = CsvColumns.open(io.BytesIO(content), None)
    assert columns is not None
    assert columns.total == FileRecords(io.BytesIO(content), "csv").count()
    read = list(read_chunks(columns, plan, size, import_runs.FileKeys()))
    assert _shape(read) == _shape(_row_chunks(content, plan, size))


@pytest.mark.parametrize(
    "record",
    [
        "  ;\t;\u00a0;;;;;;",  # white space only: blank
        "\x1c;;;;;;;;",  # a separator only Python strips: blank
        " \x1f ;;\x1d;;;;;;",
        ";;;;;;;;x",  # text in the last cell only
        "\x1cx;;;;;;;;",  # text after a separator in the first cell
        "  ;Titre;;;;;;;",
        '"";"";"";"";"";"";"";"";""',
    ],
)
def test_counts_blank_records_as_the_row_reader(record: str) -> None:
    content = (HEADER + "\n".join([LINES[0], record, record, LINES[5]]) + "\n").encode()
    columns = CsvColumns.open(io.BytesIO(content), None)
    assert columns is not None
    assert columns.total == FileRecords(io.BytesIO(content), "csv").count()
    assert columns.total == sum(frame.height for frame in columns.texts())


def test_blank_records_of_a_file_whose_every_column_is_read() -> None:
    content = b"EAN;Titre\n4006381333931;Perceuse\n ; \n\x1c;\n;x\n\n5901234123457;\n"
    plan = _plan(False)
    columns = CsvColumns.open(io.BytesIO(content), None)
    assert columns is not None
    assert columns.total == FileRecords(io.BytesIO(content), "csv").count() == 3
    read = list(read_chunks(columns, plan, 100, import_runs.FileKeys()))
    assert _shape(read) == _shape(_row_chunks(content, plan, 100))


def test_valid_values_pass_the_vector_checks() -> None:
    """A row failing a vector check is read right by the per-row checks, only slower:
    valid values at the edges must pass the vectors."""
    lines = [
        "4006381333931;-;0;0;0,00",
        "04012345678901;-;999999,99;2147483647;99999,99",
        "99999999999997;-;1\u00a0234,5;+2;1,5",
        "96385074;-;12.5;1\u202f000;-0",
        "00000000000000;-;3,1;0;0",
        "4012345679144;-;1\u00a0000 ,5;1 000;12 ,75",
    ]
    content = ("EAN;Titre;Prix TTC;Stock;Poids\n" + "\n".join(lines) + "\n").encode()
    columns = CsvColumns.open(io.BytesIO(content), None)
    assert columns is not None
    (chunk,) = read_chunks(columns, _plan(False), 100, import_runs.FileKeys())
    assert chunk.frame["_clean"].to_list() == [True] * len(lines)


def test_crlf_files_and_a_byte_order_mark_read_alike() -> None:
    content = ("\ufeff" + HEADER + "\r\n".join(LINES[:6]) + "\r\n").encode()
    plan = _plan(False)
    columns = CsvColumns.open(io.BytesIO(content), None)
    assert columns is not None
    read = list(read_chunks(columns, plan, 100, import_runs.FileKeys()))
    assert _shape(read) == _shape(_row_chunks(content, plan, 100))


@pytest.mark.parametrize(
    "content",
    [
        "EAN;Titre\n4006381333931;é\n".encode("cp1252"),  # Windows-1252
        b"EAN;Titre\n4006381333931;a;b\n",  # more cells than headers
        b"EAN;EAN\n4006381333931;4006381333931\n",  # a header twice
        b"Code;Nom inconnu\n1;2\n",  # nothing recognised
        b"   \n",
        b"EAN;Titre\n\x00\n",  # a NUL byte: UTF-16?
    ],
)
def test_files_the_columns_cannot_read_alike_go_to_the_row_reader(content: bytes) -> None:
    assert CsvColumns.open(io.BytesIO(content), None) is None


XLSX_HEADER = ["EAN", "Titre", "Prix TTC", "Stock", "Poids", "Statut", "Réf", "is_active",
               "end_of_life_date", None, "Ignorée"]  # fmt: skip
XLSX_ROWS: list[list[Any]] = [
    [4006381333931, "Perceuse", 12.5, 5, 1.5, "active", 12345, True, None, None, "x"],
    ["  4006381333931 ", "Doublon", "1", 1, 1, None, None, "oui"],  # the same EAN as text
    [],  # a blank row
    ["", "", "", "", "", "", "", "", "", "", ""],  # empty texts: blank too
    ["   ", None, None],
    [None, None, None, None, None, None, None, None, None, "sans nom"],  # an unnamed column
    [5901234123457, "Deux\nlignes", "1 234,99", 0, 0, "inactive", None, "non"],
    [5901234123458, "Mauvais chiffre de contrôle", 3, 1],
    [3760000000000.5, "EAN décimal", 3, 1],
    [96385074, "EAN-8 en nombre", 3, 1],
    [4012345678901, "Stock décimal", 3, 1.5],
    [4012345678918, "Stock démesuré", 3, 99999999999],
    [4012345678925, "Stock négatif", 3, -1],
    [4012345678932, "Prix au millième", 3.125, 1],
    [4012345678949, "Prix minuscule", 1e-7, 1],  # written 1e-07 by Python
    [4012345678956, "Prix énorme", 1e20, 1],
    [4012345678963, "Poids flottant", 3, 1, 2.675],
    [4012345678970, datetime.date(2024, 1, 2), 3, 1],  # a date as a title
    [4012345678987, True, 3, 1],  # a boolean as a title
    [4012345678994, "Actif en nombre", 3, 1, None, None, None, 1],
    [4012345679007, "Statut en nombre", 3, 1, None, 1],
    [4012345679014, "Réf décimale", 3, 1, None, None, 12.75],
    [4012345679021, "Fin de vie", 3, 1, None, None, None, None, datetime.date(2030, 1, 1)],
    [4012345679038, "Fin de vie en texte", 3, 1, None, None, None, None, "2030-01-01"],
    [4012345679045, "Formule", "=1+2", 1],  # its cached value, 3, is set below
    [4012345679052, "Formule sans valeur", "=2+2", 1],
    [4012345679069, "\u2003Cadratin\u00a0", "9,99", "7"],
    [4012345679076, "Booléen texte", 3, 1, None, None, None, "peut-être"],
    # Separators only Python strips (Excel writes them _x001F_, calamine reads them back).
    [4012345679083, "_x001F_Séparateurs _x001C_", "_x001E_ 9,99", 2, None, "_x001D_"],
    ["_x001F_", None, "_x001C_", None, None, None, None, None, None, None, "_x001D_"],
]


def _xlsx_content() -> bytes:
    """The rows above; the first formula given the value Excel would have cached."""
    rows = [row + [None] * (len(XLSX_HEADER) - len(row)) for row in XLSX_ROWS]
    content = xlsx_bytes(rows, header=XLSX_HEADER)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "xl/worksheets/sheet1.xml":
                assert b"<f>1+2</f><v />" in data
                data = data.replace(b"<f>1+2</f><v />", b"<f>1+2</f><v>3</v>")
            target.writestr(entry, data)
    return out.getvalue()


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("size", [3, 100])
@pytest.mark.parametrize("checkpoint", [0, 4, 20])
@pytest.mark.parametrize("sheet_rows", [4, 10_000])
def test_xlsx_columns_read_every_row_as_the_row_reader_does(
    strict: bool, size: int, checkpoint: int, sheet_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("resolvers.import_columns._SHEET_ROWS", sheet_rows)
    content = _xlsx_content()
    plan = _plan(strict, supplier="FOURN", checkpoint=checkpoint, file_type="xlsx")
    columns = open_columns(io.BytesIO(content), "xlsx", None)
    assert isinstance(columns, XlsxColumns)
    assert columns.total == FileRecords(io.BytesIO(content), "xlsx").count()
    read = list(read_chunks(columns, plan, size, import_runs.FileKeys()))
    assert _shape(read) == _shape(_row_chunks(content, plan, size))


def test_xlsx_numbers_read_as_the_texts_and_values_the_row_reader_makes() -> None:
    columns = open_columns(io.BytesIO(_xlsx_content()), "xlsx", None)
    assert columns is not None
    plan = _plan(False, file_type="xlsx")
    # Only cells with no text of their own leave the vectors: an exponent, a date, a
    # boolean or a number in a field that reads neither.
    assert sorted(columns.odd) == [16, 17, 19, 20, 21, 22, 24]
    rows = {r.number: r.data for c in read_chunks(columns, plan, 100, import_runs.FileKeys())
            for r in c.rows}  # fmt: skip
    assert rows[2] == {
        "ean": "4006381333931", "name": "Perceuse", "price": 12.5, "stock": 5, "weight": 1.5,
        "status": "active", "reference": "12345", "is_active": True,
    }  # fmt: skip
    assert rows[12]["stock"] == 1.5  # refused by the checks, as the row reader leaves it
    assert rows[16]["price"] == 1e-7
    assert rows[18]["weight"] == 2.675
    assert rows[19]["name"] == datetime.date(2024, 1, 2)
    assert rows[23]["reference"] == "12.75"
    assert rows[26]["price"] == 3.0
    assert "price" not in rows[27]
    # Blank rows skipped (calamine drops the white space openpyxl wrote unpreserved);
    # a value in an unnamed column makes a row without fields.
    assert [n for n in range(4, 8) if n in rows] == [7] and rows[7] == {}


# Sheets whose every column holds one kind of cell, which fastexcel reads as Arrow
# columns: numbers where texts, numbers and booleans are read, texts that fastexcel
# takes for missing values, white space, blank rows where every column holds texts.
TYPED_HEADER = ["EAN", "Titre", "Prix TTC", "Stock", "Poids", "Statut", "Réf", "is_active",
                "Largeur", "Hauteur", " Ignorée "]  # fmt: skip
TYPED_ROWS: list[list[Any]] = [
    [4006381333931, "Perceuse", 12.5, 5, 1.5, "active", 12345, True, 0.1, False, "x"],
    [4006381333931, "NA", 1, 1, 1, "", 3760000000001, False, 1e-5, True, "null"],
    [3760000000000.5, "nan", 3.125, 1.5, 2.675, "inactive", 12.75, True, 1e20, True, ""],
    [96385074, "  ", 1e-7, 99999999999, -1, "perdu", 2**55, False, 12.0, True, "n/a"],
    [4012345678901, "\u2003Cadratin\u00a0", 1e20, -1, 0.30000000000000004, "active", 1e-7,
     True, 1e17, False, "#N/A"],
    [5901234123457, "Deux\nlignes", 999999.995, 2147483648, 1e16, "NULL", -0.0, False, 5e-324,
     True, "None"],
    [40123456789, "", 0, 0, 0, "", 1e18, True, 1e15 + 0.5, False, "   "],
]  # fmt: skip
TYPED_TEXTS = [  # every column texts: blank rows, empty texts, texts fastexcel reads missing
    ["4006381333931", "Perceuse", "12,50", "5", None, "x"],
    [None, None, None, None, None, None],
    ["", "", "", "", "", ""],
    ["   ", None, None, None, None, None],
    [None, None, None, None, None, "sans nom"],
    ["5901234123457", "NA", "nan", "NULL", "x", None],
    [" 4012345678901 ", "None", "1 234,99", "n/a", None, "#N/A"],
    # Separators only Python strips: a record of them alone has no field.
    ["_x001F_4012345678918_x001C_", "_x001D_Titre", "_x001E_3,5 ", "\u20037", "x", None],
    ["_x001F_", "_x001C_ ", None, None, None, "_x001D_"],
]


# Columns of numbers or booleans with gaps: empty cells, and texts fastexcel reads as
# missing (null, or NaN) where it types the column by its other cells.
TYPED_GAPS = [
    [4006381333931, "a", 12.5, 5, True, 1.5, True, "x"],
    [4006381333931, "b", None, None, None, None, None, None],
    [None, None, None, None, None, None, None, None],  # blank
    [5901234123457, "c", "NA", "nan", "null", "N/A", "n/a", None],
    [5901234123458, "d", "NaN", "-nan", "None", "1.#IND", "#N/A", None],
    [5901234123459, "e", "", "<NA>", False, 2, False, None],
]


def _typed_contents() -> list[bytes]:
    return [
        xlsx_bytes(TYPED_ROWS, header=TYPED_HEADER),
        xlsx_bytes(TYPED_TEXTS, header=["EAN", "Titre", "Prix", "Stock", "Réf", "Notes"]),
        xlsx_bytes(
            TYPED_GAPS,
            header=["EAN", "Titre", "Prix", "Stock", "is_active", "Poids", "Largeur", "Notes"],
        ),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("sheet_rows", [3, 10_000])
def test_typed_sheets_read_as_their_cells_are(
    index: int, sheet_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fastexcel's columns make the same records, odd rows and line numbers as
    python-calamine's cells, and the same chunks as the row reader."""
    monkeypatch.setattr("resolvers.import_columns._SHEET_ROWS", sheet_rows)
    content = _typed_contents()[index]
    assert _typed_sheet(io.BytesIO(content)) is not None
    typed = XlsxColumns.open(io.BytesIO(content), None)
    cells = XlsxColumns._of_cells(io.BytesIO(content), HeaderMap(None))
    assert typed is not None and cells is not None
    assert typed.total == cells.total == FileRecords(io.BytesIO(content), "xlsx").count()
    assert pl.concat(typed.texts()).equals(pl.concat(cells.texts()))
    assert typed.odd == cells.odd
    assert bool(typed.odd) == (index != 1)
    for strict in (False, True):
        plan = _plan(strict, supplier="FOURN", file_type="xlsx")
        read = list(read_chunks(typed, plan, 4, import_runs.FileKeys()))
        assert _shape(read) == _shape(_row_chunks(content, plan, 4))


def test_typed_sheets_read_numbers_as_the_row_reader_does() -> None:
    columns = XlsxColumns.open(io.BytesIO(_typed_contents()[0]), None)
    assert columns is not None
    plan = _plan(False, file_type="xlsx")
    rows = {r.number: r.data for c in read_chunks(columns, plan, 100, import_runs.FileKeys())
            for r in c.rows}  # fmt: skip
    assert rows[2]["ean"] == "4006381333931" and rows[3]["reference"] == "3760000000001"
    assert rows[4]["ean"] == "3760000000000.5" and rows[4]["reference"] == "12.75"
    assert rows[2]["width"] == 0.1 and rows[5]["price"] == 1e-7
    assert rows[5]["reference"] == str(2**55)
    assert rows[2]["is_active"] is True and rows[2]["status"] == "active"


def test_an_empty_column_is_read_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    content = xlsx_bytes([["4006381333931", "a", None]], header=["EAN", "Titre", "Notes"])
    with caplog.at_level(logging.DEBUG):
        assert _typed_sheet(io.BytesIO(content)) is not None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    "rows, header",
    [
        ([["4006381333931", 1], ["5901234123457", "2"]], ["EAN", "Stock"]),  # kinds mixed
        ([[4006381333931, "a"], ["5901234123457", "b"]], ["EAN", "Titre"]),
        ([["4006381333931", datetime.date(2030, 1, 1)]], ["EAN", "end_of_life_date"]),
        ([["4006381333931", "a"]], ["EAN", 12]),  # a number as a header: "12.0"
        ([["4006381333931", "a", "b"]], ["EAN", "Titre", "Titre_1"]),  # as fastexcel renames
        ([["4006381333931", "a"]], ["EAN", None]),  # a column without a name
    ],
)
def test_sheets_fastexcel_cannot_read_exactly_are_read_by_cells(
    rows: list[list[Any]], header: list[Any]
) -> None:
    content = xlsx_bytes(rows, header=header)
    assert _typed_sheet(io.BytesIO(content)) is None
    assert XlsxColumns.open(io.BytesIO(content), None) is not None


@pytest.mark.parametrize(
    "content",
    [
        xlsx_bytes([["4006381333931", "a"]], header=["EAN", "EAN"]),  # a header twice
        xlsx_bytes([["4006381333931", "a"]], header=["EAN", "ean13"]),  # a field twice
        xlsx_bytes([["1", "2"]], header=["Code", "Nom inconnu"]),  # nothing recognised
        xlsx_bytes([], header=[]),  # no header
        zip_bomb(),
        b"PK\x03\x04 truncated",
        b"   \n",
    ],
)
def test_sheets_the_columns_cannot_read_alike_go_to_the_row_reader(content: bytes) -> None:
    assert XlsxColumns.open(io.BytesIO(content), None) is None


def test_large_sheets_stream_through_the_row_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    content = _xlsx_content()
    assert XlsxColumns.open(io.BytesIO(content), None) is not None
    monkeypatch.setattr("resolvers.import_columns.XLSX_IN_MEMORY_LIMIT", 1000)
    assert XlsxColumns.open(io.BytesIO(content), None) is None


def test_json_and_xml_files_are_read_by_rows() -> None:
    assert open_columns(io.BytesIO(b"[]"), "json", None) is None
    assert open_columns(io.BytesIO(b"<products/>"), "xml", None) is None


def _merged(chunk: import_runs.Chunk) -> object:
    """What the merge reads of a chunk: its items as columns, their warnings, rejections."""
    items = chunk.merge_items()
    if items is None:
        return None
    frame = items.frame.select(sorted(items.frame.columns))
    return (frame.schema, frame.rows(), repr(sorted(items.warnings.items())),
            [repr(result) for result in items.rejected])  # fmt: skip


@pytest.mark.parametrize("size", [3, 100])
@pytest.mark.parametrize("checkpoint", [0, 4])
def test_chunks_read_as_columns_give_the_merge_the_items_rows_give_it(
    size: int, checkpoint: int
) -> None:
    # Without the is_active column, which the merge leaves to the row writer.
    lines = [line.rsplit(";", 1)[0] for line in LINES]
    content = (HEADER.rsplit(";", 1)[0] + "\n" + "\n".join(lines) + "\n").encode()
    plan = _plan(False, supplier="FOURN", checkpoint=checkpoint)
    columns = CsvColumns.open(io.BytesIO(content), None)
    assert columns is not None
    read = list(read_chunks(columns, plan, size, import_runs.FileKeys()))
    merged = [_merged(chunk) for chunk in read]
    assert merged == [_merged(chunk) for chunk in _row_chunks(content, plan, size)]
    assert all(items is not None for items in merged)


def test_rows_that_pass_every_vector_check_stay_columns() -> None:
    content = (HEADER + "\n".join(LINES[:1] + LINES[4:5]) + "\n").encode()
    columns = CsvColumns.open(io.BytesIO(content), None)
    assert columns is not None
    (chunk,) = read_chunks(columns, _plan(False), 100, import_runs.FileKeys())
    assert (chunk.size, chunk.others, chunk.checks) == (2, {}, {})
