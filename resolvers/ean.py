"""EAN-8, UPC-A (12), EAN-13 and GTIN-14: format and GS1 check digit."""

import re
from dataclasses import dataclass

EAN_FORMAT = re.compile(r"^(\d{8}|\d{12}|\d{13}|\d{14})$")
EAN_LENGTHS = frozenset((8, 12, 13, 14))
FORMAT_MESSAGE = "format invalide (8, 12, 13 ou 14 chiffres attendus)"
CHECKSUM_MESSAGE = "chiffre de contrôle incorrect"


@dataclass(frozen=True, slots=True)
class EanCheck:
    well_formed: bool
    checksum_valid: bool


def normalize_ean(raw: object) -> str:
    """EANs arrive as strings or, from spreadsheets and ERPs, as numbers."""
    if type(raw) is str:  # the usual case, first: batches check thousands
        return raw.strip()
    if isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def check_digit_ok(ean: str) -> bool:
    """GS1 check digit of a string of ASCII digits (see check_ean)."""
    # Weights 3,1,3,1… from the rightmost digit of the body. Summed as bytes, each
    # digit counting 48 too much, because imports check millions of them.
    digits = ean.encode()
    tripled, single = digits[-2::-2], digits[-3::-2]
    total = 3 * (sum(tripled) - 48 * len(tripled)) + sum(single) - 48 * len(single)
    return (10 - total % 10) % 10 == digits[-1] - 48


def check_ean(ean: str) -> EanCheck:
    if not EAN_FORMAT.match(ean):
        return EanCheck(well_formed=False, checksum_valid=False)
    return EanCheck(well_formed=True, checksum_valid=check_digit_ok(ean))


def is_well_formed(ean: str) -> bool:
    return bool(EAN_FORMAT.match(ean))
