"""Small import files built in the tests: every format, encodings, and broken ones."""

import csv
import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

import openpyxl

HEADER = ["EAN", "Titre", "Prix HT", "Prix TTC", "Marque", "Poids", "Stock"]


def ean13(n: int) -> str:
    """A valid EAN-13 with the given serial number."""
    body = f"376{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def rows(count: int, start: int = 1) -> list[list[Any]]:
    return [
        [ean13(n), f"Produit {n}", "5,00", "9,99", "Acme", "1,5", str(n)]
        for n in range(start, start + count)
    ]


def csv_bytes(
    data: Sequence[Sequence[Any]],
    *,
    header: Sequence[str] = HEADER,
    delimiter: str = ";",
    encoding: str = "utf-8",
) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(data)
    return text.getvalue().encode(encoding)


def xlsx_bytes(data: Sequence[Sequence[Any]], *, header: Sequence[str] = HEADER) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for row in data:
        sheet.append(list(row))
    workbook.create_sheet("ignored").append(["EAN", "Titre"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def records(data: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> list[dict[str, Any]]:
    return [dict(zip(header, row, strict=True)) for row in data]


def json_bytes(data: Sequence[Sequence[Any]], *, header: Sequence[str] = HEADER) -> bytes:
    return json.dumps(records(data, header), ensure_ascii=False).encode()


def xml_bytes(data: Sequence[Sequence[Any]], *, header: Sequence[str] = HEADER) -> bytes:
    tags = [h.replace(" ", "_") for h in header]
    parts = ["<?xml version='1.0' encoding='UTF-8'?>", "<products>"]
    for row in data:
        fields = "".join(f"<{t}>{v}</{t}>" for t, v in zip(tags, row, strict=True))
        parts.append(f"<product>{fields}</product>")
    parts.append("</products>")
    return "\n".join(parts).encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<products><product><EAN>3760000000019</EAN><Titre>&lol4;</Titre></product></products>
"""


def zip_bomb() -> bytes:
    """A small 'xlsx' whose sheet unpacks to 16 MB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (16 * 1024 * 1024))
    return out.getvalue()
