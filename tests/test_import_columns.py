"""The columnar CSV reader makes of every file exactly what the row reader makes of it:
the same rows, line numbers, values, and the same checked items or rejections."""

import io
import uuid
from itertools import islice

import pytest

from pim.auth import Caller
from resolvers import import_runs
from resolvers.import_columns import CsvColumns, read_chunks
from resolvers.import_files import FileRecords
from resolvers.product_writes import Checked, CheckedItem, WriteOptions

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
]


def _plan(strict: bool, supplier: str | None = None, checkpoint: int = 0) -> import_runs.RunPlan:
    caller = Caller(
        account_id=uuid.uuid4(), account_name="a", key_id=uuid.uuid4(), key_name="k",
        scopes=frozenset({"products:write"}), strict_ean=strict,
    )  # fmt: skip
    options = WriteOptions(default_supplier_code=supplier)
    return import_runs.RunPlan(uuid.uuid4(), caller, "csv", None, checkpoint, options, False, 0)


def _row_chunks(content: bytes, plan: import_runs.RunPlan, size: int) -> list[import_runs.Chunk]:
    records = FileRecords(io.BytesIO(content), "csv")
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
