"""/export: every order and every wallet ledger row as CSV files for the admins.

Rows are read a page at a time (by id) and written to temporary files, so memory stays bounded
however large the tables are; the caller sends the files and then removes them. Text cells a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) are prefixed with ``'``;
numbers stay numbers.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from storage.db import Row
from storage.stats import StatsRepo

PAGE = 500
ORDER_COLUMNS = (
    "id",
    "user_id",
    "username",
    "provider",
    "provider_order_id",
    "kind",
    "service",
    "country",
    "phone",
    "price",
    "currency",
    "display_price",
    "display_currency",
    "status",
    "created_at",
    "updated_at",
    "expires_at",
    "renewed_at",
)
LEDGER_COLUMNS = (
    "id",
    "user_id",
    "kind",
    "amount",
    "currency",
    "hold_id",
    "order_id",
    "ref",
    "actor",
    "reason",
    "created_at",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

Fetch = Callable[[int, int], Awaitable[list[Row]]]


@dataclass(frozen=True, slots=True)
class CsvFile:
    path: Path
    filename: str
    rows: int


def cell(value: object) -> str:
    """A value as a CSV cell that no spreadsheet runs as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA):
        try:
            Decimal(text)
        except InvalidOperation:
            return "'" + text
    return text


async def write_csv(
    fetch: Fetch, columns: Sequence[str], filename: str, page: int = PAGE
) -> CsvFile:
    """Every row ``fetch(after_id, limit)`` gives, page after page, into a temporary file."""
    handle, name = tempfile.mkstemp(prefix="export-", suffix=".csv")
    path, rows, after = Path(name), 0, 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            while batch := await fetch(after, page):
                writer.writerows([cell(row[c]) for c in columns] for row in batch)
                rows += len(batch)
                after = int(batch[-1]["id"])
    except BaseException:
        remove([CsvFile(path, filename, rows)])
        raise
    return CsvFile(path, filename, rows)


async def export_all(stats: StatsRepo, stamp: str) -> list[CsvFile]:
    """The orders and the ledger as CSV files named with ``stamp`` (remove them when sent)."""
    files: list[CsvFile] = []
    try:
        files.append(await write_csv(stats.orders_after, ORDER_COLUMNS, f"orders-{stamp}.csv"))
        files.append(await write_csv(stats.ledger_after, LEDGER_COLUMNS, f"ledger-{stamp}.csv"))
    except BaseException:
        remove(files)
        raise
    return files


def remove(files: Sequence[CsvFile]) -> None:
    for file in files:
        file.path.unlink(missing_ok=True)
