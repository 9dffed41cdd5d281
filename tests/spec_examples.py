"""The example responses of the published documentation (../shared/spec/*.txt), each with
the request it answers, read from the text as a person reads it.

An example follows a line "Response" (or an envelope's label) and answers the last
`curl` before it: its method (-X, GET by default) and its path. Where the documentation
elides a value (`{ ... }`, `[...]`) the example holds ELIDED there: the text says
nothing about that value's shape.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

PROJECT_DIR = Path(__file__).resolve().parent.parent
SPEC_DIR = Path(os.environ.get("PIM_SPEC_DIR", PROJECT_DIR.parent / "shared" / "spec"))
ELIDED = "<elided>"
# The labels of the examples that answer no one request: a surface's envelopes.
ENVELOPE_LABELS = ("Success envelope", "Error envelope", "Success", "Error")
_LABEL = re.compile(r"^(Response|" + "|".join(ENVELOPE_LABELS) + r")\s*$", re.MULTILINE)
_CURL = re.compile(r"curl\s+(?:-X\s+(?P<method>[A-Z]+)\s+)?\"?(?P<url>https://\S+?)\"?(?:\s|$)")
_ELISIONS = re.compile(r"\{\s*\.\.\.\s*\}|\[\s*\.\.\.\s*\]")


@dataclass(frozen=True)
class Example:
    source: str  # file:line, for the test's id
    label: str
    method: str | None
    path: str | None
    body: Any

    @property
    def id(self) -> str:
        what = f"{self.method} {self.path}" if self.label == "Response" else self.label
        return f"{self.source} {what}"


def _json_at(text: str, start: int) -> str:
    """The JSON value (object or array) that starts at `start`, by matching brackets."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        char = text[i]
        if in_string:
            escaped = char == "\\" and not escaped
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    raise ValueError(f"unterminated JSON at offset {start}")


def _request_before(text: str, end: int) -> tuple[str | None, str | None]:
    curls = list(_CURL.finditer(text, 0, end))
    if not curls:
        return None, None
    last = curls[-1]
    return last["method"] or "GET", urlsplit(last["url"]).path


def examples_in(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    found = []
    for label in _LABEL.finditer(text):
        start = label.end()
        while start < len(text) and text[start].isspace():
            start += 1
        if start >= len(text) or text[start] not in "{[":
            continue
        raw = _json_at(text, start)
        body = orjson.loads(_ELISIONS.sub(orjson.dumps(ELIDED).decode(), raw))
        method, url_path = _request_before(text, label.start())
        line = text.count("\n", 0, label.start()) + 1
        found.append(Example(f"{path.name}:{line}", label[1], method, url_path, body))
    return found


def all_examples() -> list[Example]:
    return [e for spec in sorted(SPEC_DIR.glob("*.txt")) for e in examples_in(spec)]


def response_labels(path: Path) -> int:
    """How many "Response" lines a spec file has: each must give an example."""
    return len(re.findall(r"^Response\s*$", path.read_text(encoding="utf-8"), re.MULTILINE))
