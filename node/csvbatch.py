"""Batch files for ``riskmesh query|report|retract --file``: CSV in, one result per row.

A batch file is CSV with a header row naming its columns (``kind,value``, plus
``category,severity,ttl_days,ref`` for reports or ``reason`` for
retractions), as Excel and LibreOffice write it: UTF-8 with or without a BOM
(Excel's "CSV UTF-8"), or UTF-16 with a BOM; ``,`` or ``;`` (or a tab) between
fields, whichever the header uses. Blank lines are skipped. A file that cannot
be read that way is refused with one line saying why (:class:`BatchFileError`)
before anything is sent.

Rows are sent in batches of at most the node's limit. Every result names its
row (the file's line number; the header is row 1) and kind; the raw value is
echoed only on request. A refused report or retraction batch is all or
nothing on the node, so :func:`publish_rows` resends a batch without its
refused rows once: every valid row is published, every refused row reported.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.errors import ClientError

__all__ = [
    "QUERY_COLUMNS",
    "REPORT_COLUMNS",
    "RETRACT_COLUMNS",
    "BatchFileError",
    "Row",
    "publish_rows",
    "query_rows",
    "read_rows",
]

#: (required, optional) columns of each kind of batch file
QUERY_COLUMNS = (("kind", "value"), ("ref",))
REPORT_COLUMNS = (("kind", "value", "category"), ("severity", "ttl_days", "ref"))
RETRACT_COLUMNS = (("kind", "value", "reason"), ())
_INTS = ("severity", "ttl_days")
_DELIMITERS = (",", ";", "\t")


class BatchFileError(Exception):
    """A batch file that cannot be read; the message is one line."""


@dataclass(frozen=True, slots=True)
class Row:
    row: int  # line number in the file; the header is row 1
    item: dict[str, Any]


def _text(data: bytes, name: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise BatchFileError(f"{name}: not valid UTF-16 text") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BatchFileError(
            f"{name}: line {line} is not UTF-8 text (byte {e.start}); save the file as CSV UTF-8"
        ) from None


def read_rows(data: bytes, columns: tuple[Sequence[str], Sequence[str]], name: str) -> list[Row]:
    """The rows of a batch file as items, or :class:`BatchFileError`."""
    required, optional = columns
    text = _text(data, name)
    lines = text.splitlines()
    header_line = next((ln for ln in lines if ln.strip()), None)
    need = ",".join(required)
    if header_line is None:
        raise BatchFileError(f"{name}: the file is empty; it needs a header row: {need}")
    delimiter = max(_DELIMITERS, key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[Row] = []
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [c.strip().lower() for c in record]
                _check_header(header, required, optional, name, need)
                continue
            if len(record) != len(header):
                raise BatchFileError(
                    f"{name}: row {reader.line_num} has {len(record)} fields; the header "
                    f"has {len(header)} ({delimiter!r} between fields)"
                )
            item: dict[str, Any] = {}
            for col, cell in zip(header, record, strict=True):
                cell = cell.strip()
                if col not in required and cell == "":
                    continue
                item[col] = int(cell) if col in _INTS and cell.isdigit() else cell
            rows.append(Row(reader.line_num, item))
    except csv.Error as e:
        raise BatchFileError(f"{name}: row {reader.line_num}: {e}") from None
    if not rows:
        raise BatchFileError(f"{name}: no rows under the header")
    return rows


def _check_header(
    header: list[str], required: Sequence[str], optional: Sequence[str], name: str, need: str
) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        if header and header[0] in ("phone", "email", "device", "account", "merchant", "ip"):
            raise BatchFileError(
                f"{name}: the first row is data; add a header row naming the columns: {need}"
            )
        raise BatchFileError(
            f"{name}: the header row must name the columns {need}"
            + (f" (optional: {','.join(optional)})" if optional else "")
            + f"; missing {','.join(missing)}"
        )
    unknown = [c for c in header if c not in required and c not in optional]
    if unknown:
        allowed = ",".join([*required, *optional])
        raise BatchFileError(f"{name}: unknown column {unknown[0]!r}; the columns are {allowed}")
    if len(set(header)) != len(header):
        raise BatchFileError(f"{name}: a column is named twice in the header")


@dataclass(slots=True)
class Outcome:
    """One row's result."""

    row: int
    kind: str
    value: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return "error" in self.result

    def to_json(self, echo_value: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "kind": self.kind}
        if echo_value:
            out["value"] = self.value
        out.update(self.result)
        return out


def _outcome(r: Row) -> Outcome:
    return Outcome(r.row, str(r.item.get("kind", "")), str(r.item.get("value", "")))


def query_rows(
    rows: Sequence[Row], send: Callable[[list[dict[str, Any]]], list[dict[str, Any]]], size: int
) -> list[Outcome]:
    """Query every row, ``size`` at a time (fewer if the node says the batch is too
    large: its ``api.max_batch`` may differ from the one this side read)."""
    out: list[Outcome] = []
    i = 0
    while i < len(rows):
        chunk = rows[i : i + size]
        items = [{"kind": r.item["kind"], "value": r.item["value"]} for r in chunk]
        try:
            results = send(items)
        except ClientError as e:
            if e.reason != "batch_too_large" or len(chunk) == 1:
                raise
            size = max(1, len(chunk) // 2)
            continue
        for r, res in zip(chunk, results, strict=True):
            o = _outcome(r)
            o.result = res
            out.append(o)
        i += len(chunk)
    return out


def publish_rows(
    rows: Sequence[Row], send: Callable[[list[dict[str, Any]]], dict[str, Any]], size: int
) -> list[Outcome]:
    """Report or retract every row, ``size`` at a time (fewer if the node says the
    batch is too large). A batch the node refuses for some of its rows (422
    ``invalid_items``) is sent again without them, once."""
    out: list[Outcome] = []
    i = 0
    while i < len(rows):
        chunk = list(rows[i : i + size])
        outcomes = {r.row: _outcome(r) for r in chunk}
        todo = chunk
        for _attempt in range(2):
            if not todo:
                break
            try:
                receipt = send([r.item for r in todo])
            except ClientError as e:
                if e.reason == "batch_too_large" and len(chunk) > 1 and todo is chunk:
                    size = max(1, len(chunk) // 2)
                    break
                if e.reason != "invalid_items" or not e.items:
                    raise
                bad = {int(it["index"]): it for it in e.items}
                for j, r in enumerate(todo):
                    if j in bad:
                        outcomes[r.row].result = {
                            "error": {"code": bad[j]["code"], "message": bad[j]["message"]}
                        }
                todo = [r for j, r in enumerate(todo) if j not in bad]
                continue
            for r in todo:
                outcomes[r.row].result = {"accepted": True, "entry": receipt["entry"]}
            break
        if todo is chunk and not any(o.result for o in outcomes.values()):
            continue  # the node took fewer at once: the same rows again, smaller
        for o in outcomes.values():
            if not o.result:
                o.result = {"error": {"code": "not_sent", "message": "batch refused twice"}}
        out.extend(outcomes[r.row] for r in chunk)
        i += len(chunk)
    return out
