"""Reading import files: formats, encodings, delimiters, header mapping, broken files."""

import io
import pickle
from collections.abc import Iterator

import pytest

from resolvers import import_files
from resolvers.import_files import FileRecords, ImportFileError, Row
from tests.import_files import (
    BILLION_LAUGHS,
    HEADER,
    csv_bytes,
    ean13,
    json_bytes,
    xlsx_bytes,
    xml_bytes,
    zip_bomb,
)


def read(
    content: bytes, kind: str, mapping: dict[str, str] | None = None, *, eans_only: int = 0
) -> Iterator[Row]:
    return FileRecords(io.BytesIO(content), kind, mapping).rows(eans_only=eans_only)


def count(content: bytes, kind: str) -> int:
    return FileRecords(io.BytesIO(content), kind).count()


EXPECTED = {
    "ean": ean13(1), "name": "Crème brûlée", "cost_price": 5.0, "price": 9.99,
    "brand_name": "Acme", "weight": 1.5, "stock": 12,
}  # fmt: skip
ROW = [ean13(1), "Crème brûlée", "5,00", "9,99", "Acme", "1,5", "12"]


@pytest.mark.parametrize(
    "content",
    [
        csv_bytes([ROW], delimiter=";"),
        csv_bytes([ROW], delimiter=","),
        b"\xef\xbb\xbf" + csv_bytes([ROW], delimiter=","),
        csv_bytes([ROW], encoding="cp1252"),
        csv_bytes([ROW], encoding="latin-1"),
    ],
    ids=["semicolon", "comma", "utf8-bom", "windows-1252", "latin-1"],
)
def test_csv_rows_are_mapped_whatever_the_delimiter_and_encoding(content: bytes) -> None:
    [row] = read(content, "csv")
    assert (row.number, row.data) == (2, EXPECTED)


def test_comma_csv_keeps_quoted_decimal_commas() -> None:
    content = f'EAN,Prix TTC\n{ean13(1)},"12,50"\n'.encode()
    [row] = read(content, "csv")
    assert row.data == {"ean": ean13(1), "price": 12.5}


@pytest.mark.parametrize("build,kind", [(xlsx_bytes, "xlsx"), (json_bytes, "json"),
                                        (xml_bytes, "xml")])  # fmt: skip
def test_other_formats_give_the_same_rows(build, kind: str) -> None:  # type: ignore[no-untyped-def]
    [row] = read(build([ROW]), kind)
    assert row.data == EXPECTED


def test_large_xlsx_files_stream_through_openpyxl_with_the_same_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = xlsx_bytes([ROW, [3760000000019, "Chaise", 5, 9.99, "Acme", 1.5, 12.0]])
    in_memory = [(r.number, r.data) for r in read(content, "xlsx")]
    monkeypatch.setattr(import_files, "XLSX_IN_MEMORY_LIMIT", 0)
    assert [(r.number, r.data) for r in read(content, "xlsx")] == in_memory
    assert in_memory[0][1] == EXPECTED
    with pytest.raises(ImportFileError, match="illisible"):
        count(content[:2000], "xlsx")


def test_a_spreadsheet_counted_then_read_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import python_calamine

    opened: list[object] = []
    workbook = python_calamine.CalamineWorkbook

    class Counted:
        @staticmethod
        def from_filelike(file: object) -> object:
            opened.append(file)
            return workbook.from_filelike(file)

    content = xlsx_bytes([ROW, [3760000000019, "Chaise", 5, 9.99, "Acme", 1.5, 12.0]])
    records = FileRecords(io.BytesIO(content), "xlsx")
    with monkeypatch.context() as patched:
        patched.setattr(python_calamine, "CalamineWorkbook", Counted)
        assert records.count() == 2
        assert [row.data for row in records.rows()] == [
            EXPECTED,
            {
                **EXPECTED,
                "ean": "3760000000019",
                "name": "Chaise",
                "price": 9.99,
                "cost_price": 5.0,
            },
        ]
        assert [row.number for row in records.rows(eans_only=1)] == [2, 3]
    assert len(opened) == 1


def test_xlsx_numbers_become_codes_and_numbers() -> None:
    content = xlsx_bytes([[3760000000019, "Chaise", 5, 9.99, "Acme", 1.5, 12.0]])
    [row] = read(content, "xlsx")
    assert row.data == {"ean": "3760000000019", "name": "Chaise", "cost_price": 5,
                        "price": 9.99, "brand_name": "Acme", "weight": 1.5, "stock": 12}  # fmt: skip


def test_english_field_names_and_a_given_mapping() -> None:
    english = csv_bytes(
        [[ean13(1), "Chair", "12.5"]], header=["ean", "name", "price"], delimiter=","
    )
    assert next(read(english, "csv")).data == {
        "ean": ean13(1),
        "name": "Chair",
        "price": 12.5,
    }
    custom = csv_bytes([[ean13(1), "Chair", "12,5"]], header=["Code", "Libellé produit", "PV"])
    mapping = {"Code": "ean", "Libellé produit": "name", "PV": "price"}
    assert next(read(custom, "csv", mapping)).data == {
        "ean": ean13(1), "name": "Chair", "price": 12.5,
    }  # fmt: skip


def test_blank_lines_are_skipped_and_rows_stream() -> None:
    content = csv_bytes([ROW, ["", "", "", "", "", "", ""], ROW])
    assert [r.number for r in read(content, "csv")] == [2, 4]
    big = csv_bytes([[ean13(n), f"P{n}", "1", "2", "B", "1", "1"] for n in range(5000)])
    rows = read(big, "csv")
    assert next(rows).data["name"] == "P0"  # a generator: rows come one at a time
    assert count(big, "csv") == 5000
    resumed = read(big, "csv", eans_only=2)
    assert [next(resumed).data for _ in range(3)] == [
        {"ean": ean13(0)}, {"ean": ean13(1)},
        {"ean": ean13(2), "name": "P2", "cost_price": 1, "price": 2, "brand_name": "B",
         "weight": 1, "stock": 1},
    ]  # fmt: skip


def test_rows_reach_the_writer_process_whole() -> None:
    (row,) = read(csv_bytes([ROW]), "csv")
    assert pickle.loads(pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)) == row


@pytest.mark.parametrize(
    "content,kind,reason",
    [
        (b"", "csv", "fichier vide"),
        (b"   \n", "json", "fichier vide"),
        (csv_bytes([])[:-2] + f'\r\n{ean13(1)};"Crème br'.encode(), "csv", "tronqué"),
        ("EAN;Titre\n1;é\n".encode("utf-16"), "csv", "encodage"),
        (csv_bytes([ROW], header=["foo", "bar", "baz", "a", "b", "c", "d"]), "csv",
         "aucune colonne reconnue"),
        (json_bytes([ROW])[:-20], "json", "tronqué"),
        (b'{"ean": "1"}', "json", "tableau"),
        (xml_bytes([ROW])[:-30], "xml", "tronqué"),
        (BILLION_LAUGHS, "xml", "entités"),
        (b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         b"<products><product><EAN>&x;</EAN></product></products>", "xml", "entités"),
        (xlsx_bytes([ROW])[:2000], "xlsx", "illisible"),
        (zip_bomb(), "xlsx", "bombe"),
        (b"not a zip at all", "xlsx", "illisible"),
    ],
    ids=["empty", "blank-json", "truncated-csv", "utf16-csv", "unknown-columns",
         "truncated-json", "json-object", "truncated-xml", "billion-laughs", "external-entity",
         "truncated-xlsx", "zip-bomb", "not-a-zip"],
)  # fmt: skip
def test_broken_files_fail_with_a_reason(content: bytes, kind: str, reason: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        count(content, kind)
    assert reason in caught.value.message


def test_header_only_files_have_no_rows() -> None:
    for content, kind in [(csv_bytes([]), "csv"), (b"[]", "json"), (xml_bytes([]), "xml"),
                          (xlsx_bytes([]), "xlsx")]:  # fmt: skip
        assert count(content, kind) == 0, kind
    assert HEADER[0] == "EAN"


def test_xml_records_may_use_attributes_and_namespaces() -> None:
    content = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        b'<catalog xmlns="urn:supplier"><item EAN="3760000000019"><Nom>Ch\xe8vre</Nom>'
        b"<Prix>4,50</Prix></item><item EAN='3760000000026'/></catalog>"
    )
    assert [r.data for r in read(content, "xml")] == [
        {"ean": "3760000000019", "name": "Chèvre", "price": 4.5},
        {"ean": "3760000000026"},
    ]


FORMATS = [("csv", csv_bytes), ("json", json_bytes), ("xml", xml_bytes)]


def test_records_cut_by_the_blocks_a_file_is_read_in_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    many = [[ean13(n), f"Crème n°{n}", "1,5", "2", "Acme", "1", str(n)] for n in range(40)]
    expected = {kind: [r.data for r in read(build(many), kind)] for kind, build in FORMATS}
    monkeypatch.setattr(import_files, "_READ_BLOCK", 7)  # cuts inside characters and records
    for kind, build in FORMATS:
        assert [r.data for r in read(build(many), kind)] == expected[kind], kind
        assert count(build(many), kind) == 40
    assert expected["json"][39] == {
        "ean": ean13(39), "name": "Crème n°39", "cost_price": 1.5, "price": 2,
        "brand_name": "Acme", "weight": 1, "stock": 39,
    }  # fmt: skip
    with pytest.raises(ImportFileError, match="élément 40"):
        count(json_bytes(many)[:-9], "json")
