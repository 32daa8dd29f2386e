"""KIS answers → rows of ``intraday_quotes`` and ``order_books``, numbers parsed exactly.

Every KIS value is a string (``"65850"``, ``"-150"``, ``"-0.23"``). Integers are parsed with
``int`` and rates with ``Decimal`` — never through ``float`` — and anything that is not a number
raises :class:`~krxflow.kis.errors.KisResponseError` naming the field, so a changed API surfaces
as a clear error instead of a silently wrong price.

KIS reports an unknown code as success with a zero-filled ``output`` (current price ``"0"``), and
an order book without ``askp1``; both parse to ``None`` ("not found"). A halted stock is
``iscd_stat_cls_code == "58"`` (거래정지) or ``temp_stop_yn == "Y"``.

``ts`` is the moment krxflow received the answer (``inquire-price`` carries no time of its own),
rounded to the millisecond, tz-aware.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal

from krxflow.kis.errors import KisResponseError

_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")

QUOTE_FIELDS = {"price": "stck_prpr", "change": "prdy_vrss", "cum_volume": "acml_vol", "cum_value": "acml_tr_pbmn",
                "open": "stck_oprc", "high": "stck_hgpr", "low": "stck_lwpr"}
BOOK_COLUMNS = ([f"ask_price_{i}" for i in range(1, 11)] + [f"bid_price_{i}" for i in range(1, 11)]
                + [f"ask_qty_{i}" for i in range(1, 11)] + [f"bid_qty_{i}" for i in range(1, 11)]
                + ["total_ask_qty", "total_bid_qty"])
QUOTE_COLUMNS = ["ticker", "ts", "price", "change", "change_rate", "cum_volume", "cum_value", "open", "high", "low",
                 "halted"]


def parse_int(value, field: str) -> int | None:
    """``"65850"`` → 65850; empty → None; anything else → KisResponseError."""
    if value is None:
        return None
    text = str(value).strip().replace(",", "")
    if text == "":
        return None
    if not _INT.match(text):
        raise KisResponseError(f"KIS field {field}: {value!r} is not an integer")
    return int(text)


def parse_decimal(value, field: str) -> Decimal | None:
    """``"-0.23"`` → Decimal('-0.23'); empty → None; anything else → KisResponseError."""
    if value is None:
        return None
    text = str(value).strip().replace(",", "")
    if text == "":
        return None
    if not _DEC.match(text):
        raise KisResponseError(f"KIS field {field}: {value!r} is not a number")
    return Decimal(text)


def observed_at(now: dt.datetime | None = None) -> dt.datetime:
    """The receipt time used as ``ts``: tz-aware UTC, millisecond precision."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_quote(ticker: str, output: dict, ts: dt.datetime) -> dict | None:
    """An ``intraday_quotes`` row from ``inquire-price``'s ``output``; None for an unknown code."""
    if not isinstance(output, dict) or not output:
        return None
    row: dict = {"ticker": ticker, "ts": ts}
    for column, name in QUOTE_FIELDS.items():
        row[column] = parse_int(output.get(name), name)
    if not row["price"]:
        return None
    row["change_rate"] = parse_decimal(output.get("prdy_ctrt"), "prdy_ctrt")
    row["halted"] = output.get("iscd_stat_cls_code") == "58" or output.get("temp_stop_yn") == "Y"
    return row


def parse_book(ticker: str, output1: dict, ts: dt.datetime) -> dict | None:
    """An ``order_books`` row from ``inquire-asking-price-exp-ccn``'s ``output1``; None if absent."""
    if not isinstance(output1, dict) or not str(output1.get("askp1", "")).strip():
        return None
    row: dict = {"ticker": ticker, "ts": ts}
    for i in range(1, 11):
        row[f"ask_price_{i}"] = parse_int(output1.get(f"askp{i}"), f"askp{i}")
        row[f"bid_price_{i}"] = parse_int(output1.get(f"bidp{i}"), f"bidp{i}")
        row[f"ask_qty_{i}"] = parse_int(output1.get(f"askp_rsqn{i}"), f"askp_rsqn{i}")
        row[f"bid_qty_{i}"] = parse_int(output1.get(f"bidp_rsqn{i}"), f"bidp_rsqn{i}")
    row["total_ask_qty"] = parse_int(output1.get("total_askp_rsqn"), "total_askp_rsqn")
    row["total_bid_qty"] = parse_int(output1.get("total_bidp_rsqn"), "total_bidp_rsqn")
    return row


def fingerprint(row: dict) -> str:
    """A digest of a row's values except ``ts``: equal digests mean "unchanged since last poll"."""
    values = {k: str(v) for k, v in row.items() if k != "ts"}
    return hashlib.blake2b(json.dumps(values, sort_keys=True).encode(), digest_size=12).hexdigest()


def encode_row(row: dict) -> str:
    """A row as JSON for the Redis stream (Decimal and datetime as exact text)."""
    return json.dumps({k: (v.isoformat() if isinstance(v, dt.datetime) else str(v) if isinstance(v, Decimal) else v)
                       for k, v in row.items()}, separators=(",", ":"))


def decode_row(text: str) -> dict:
    """The inverse of :func:`encode_row` (``ts`` back to a tz-aware datetime, rates to Decimal)."""
    row = json.loads(text)
    row["ts"] = dt.datetime.fromisoformat(row["ts"])
    if row.get("change_rate") is not None:
        row["change_rate"] = Decimal(row["change_rate"])
    return row
