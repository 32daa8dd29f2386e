"""The KIS WebSocket protocol: subscription messages, control frames, data frames → records → rows.

What KIS sends (checked against the official ``koreainvestment/open-trading-api`` samples,
``examples_llm/kis_auth.py`` and ``examples_llm/domestic_stock/{ccnl,asking_price}_{krx,total}``):

* **control frames** are JSON text: subscribe/unsubscribe acks
  ``{"header": {"tr_id", "tr_key", "encrypt"}, "body": {"rt_cd", "msg_cd", "msg1", "output": {"iv", "key"}}}``
  and the heartbeat ``{"header": {"tr_id": "PINGPONG", "datetime": "YYYYmmddHHMMSS"}}``, which the
  client answers with a WebSocket pong carrying the same text (``await ws.pong(raw)``, as the
  official samples do);
* **data frames** are ``<encrypted 0|1>|<tr_id>|<count, 3 digits>|<payload>``: the payload's
  fields are separated by ``^`` and a frame with ``count`` > 1 simply concatenates ``count``
  records, so it splits into ``count`` equal chunks.

A frame whose field count is not ``count × expected`` for its TR (:data:`FIELD_COUNTS`) is never
guessed at: it is returned as *raw* (kept verbatim in ``market_data`` by the drain, and counted).
That is what protects the table from KIS appending a field (as the 2026-09 notice says it will for
``H0STCNT0``) — a changed layout shows up as unparsed frames instead of shifted columns.

Records travel through the Redis stream as lists of strings; :func:`trade_row` and
:func:`book_row` turn them into ``trades`` / ``order_books`` rows in the draining task.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache

from krxflow.kis.parsing import BOOK_COLUMNS, parse_decimal, parse_int

#: Trades (체결) and 10-level books (호가) per venue setting: ``J`` = KRX, ``UN`` = KRX+NXT (통합).
TRADE_TR = {"J": "H0STCNT0", "UN": "H0UNCNT0"}
BOOK_TR = {"J": "H0STASP0", "UN": "H0UNASP0"}
#: Fields per record, from the official column lists (H0UNASP0 adds KRX/NXT mid-price fields).
FIELD_COUNTS = {"H0STCNT0": 46, "H0UNCNT0": 46, "H0STASP0": 59, "H0UNASP0": 65}
TRADE_TRS = frozenset(TRADE_TR.values())
BOOK_TRS = frozenset(BOOK_TR.values())

PINGPONG = "PINGPONG"
SUBSCRIBE, UNSUBSCRIBE = "1", "2"
#: Control answers (msg_cd): what the client does with them.
SUBSCRIBED = "OPSP0000"
UNSUBSCRIBED = "OPSP0001"
ALREADY_SUBSCRIBED = "OPSP0002"
NOT_SUBSCRIBED = "OPSP0003"
CAP_REACHED = "OPSP0008"
INVALID_APPROVAL = "OPSP0011"
APPKEY_IN_USE = "OPSP8996"

TRADE_COLUMNS = ["ticker", "ts", "cum_volume", "price", "change", "change_rate", "volume", "cum_value", "side",
                 "open", "high", "low", "ask_price_1", "bid_price_1", "ask_qty_1", "bid_qty_1", "strength",
                 "halted", "hour_code", "received_at"]
BOOK_TABLE_COLUMNS = ["ticker", "ts", *BOOK_COLUMNS]
_SIDE = {"1": "buy", "5": "sell"}


def subscription_message(approval_key: str, tr_id: str, tr_key: str, tr_type: str = SUBSCRIBE) -> str:
    """The JSON text frame that (un)registers ``tr_id``/``tr_key`` (one frame per registration)."""
    return json.dumps({"header": {"approval_key": approval_key, "custtype": "P", "tr_type": tr_type,
                                  "content-type": "utf-8"},
                       "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}}, separators=(",", ":"))


@dataclass(frozen=True)
class Control:
    """A JSON control frame: an ack/refusal (``msg_cd``) or the PINGPONG heartbeat."""

    tr_id: str
    tr_key: str
    rt_cd: str | None
    msg_cd: str | None
    msg1: str | None

    @property
    def is_pingpong(self) -> bool:
        return self.tr_id == PINGPONG

    @property
    def ok(self) -> bool:
        return self.rt_cd == "0"


def parse_control(text: str) -> Control:
    """A JSON control frame (raises ``ValueError`` when it is not one)."""
    message = json.loads(text)
    header = message.get("header") or {}
    body = message.get("body") or {}
    return Control(tr_id=str(header.get("tr_id", "")), tr_key=str(header.get("tr_key", "") or ""),
                   rt_cd=body.get("rt_cd"), msg_cd=body.get("msg_cd"), msg1=body.get("msg1"))


@dataclass
class Frame:
    """A data frame cut into records (``records``), or kept whole (``raw_reason`` set)."""

    tr_id: str
    count: int
    records: list[list[str]]
    raw_reason: str | None = None
    payload: str = ""


def split_frame(text: str) -> Frame:
    """``0|H0STCNT0|002|a^b^…^a^b^…`` → two records of 46 fields (or a raw frame, see module doc)."""
    parts = text.split("|", 3)
    if len(parts) != 4:
        return Frame("", 0, [], "not four '|' parts", text)
    encrypted, tr_id, count_text, payload = parts
    if encrypted != "0":
        return Frame(tr_id, 0, [], "encrypted frame", payload)
    try:
        count = int(count_text)
    except ValueError:
        return Frame(tr_id, 0, [], f"bad record count {count_text!r}", payload)
    expected = FIELD_COUNTS.get(tr_id)
    if expected is None:
        return Frame(tr_id, count, [], "unknown tr_id", payload)
    fields = payload.split("^")
    if count < 1 or len(fields) != count * expected:
        return Frame(tr_id, count, [], f"{len(fields)} fields for {count} record(s) of {expected}", payload)
    return Frame(tr_id, count, [fields[i * expected:(i + 1) * expected] for i in range(count)])


# ------------------------------------------------------------------ records → rows (draining task)
@lru_cache(maxsize=65536)
def _kst_datetime(day: str, hhmmss: str) -> dt.datetime:
    """KST ``YYYYMMDD`` + ``HHMMSS`` → tz-aware datetime (cached: thousands of records share a second)."""
    from krxflow.market_time import KST

    return dt.datetime.strptime(day + hhmmss, "%Y%m%d%H%M%S").replace(tzinfo=KST)


@lru_cache(maxsize=64)
def _kst_day(epoch_second: int) -> str:
    from krxflow.market_time import KST

    return dt.datetime.fromtimestamp(epoch_second, KST).strftime("%Y%m%d")


#: Integer columns of ``trades`` and their field index in a trade record.
_TRADE_INTS = {"cum_volume": 13, "price": 2, "change": 4, "volume": 12, "cum_value": 14, "open": 7, "high": 8,
               "low": 9, "ask_price_1": 10, "bid_price_1": 11, "ask_qty_1": 36, "bid_qty_1": 37}
_TRADE_DECIMALS = {"change_rate": 5, "strength": 18}
_BOOK_INTS = {**{f"ask_price_{i}": 2 + i for i in range(1, 11)}, **{f"bid_price_{i}": 12 + i for i in range(1, 11)},
              **{f"ask_qty_{i}": 22 + i for i in range(1, 11)}, **{f"bid_qty_{i}": 32 + i for i in range(1, 11)},
              "total_ask_qty": 43, "total_bid_qty": 44}


def trade_table(items: list) -> tuple:
    """``[[rx_µs, fields], …]`` → (pyarrow table of ``trades`` rows, exchange times in epoch seconds).

    The fast, columnar form of :func:`trade_row` for the draining task: every number is cast by
    Arrow, which accepts only plain decimal digits — any other value raises ``pyarrow.ArrowInvalid``
    and the caller falls back to :func:`trade_row` record by record (which keeps the odd one raw).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rxs = [item[0] for item in items]
    cols = list(zip(*(item[1] for item in items)))
    times = [_kst_datetime(day, hhmmss) for day, hhmmss in zip(cols[33], cols[1])]
    arrays = {"ticker": pa.array(cols[0], pa.string()), "ts": pa.array(times, pa.timestamp("us", tz="UTC"))}
    for name, index in _TRADE_INTS.items():
        arrays[name] = pc.cast(pa.array(cols[index], pa.string()), pa.int64())
    for name, index in _TRADE_DECIMALS.items():
        arrays[name] = pc.cast(pa.array(cols[index], pa.string()), pa.decimal128(12, 2))
    arrays["side"] = pa.array([_SIDE.get(code) for code in cols[21]], pa.string())
    arrays["halted"] = pa.array([flag == "Y" for flag in cols[35]], pa.bool_())
    arrays["hour_code"] = pa.array([code or None for code in cols[43]], pa.string())
    arrays["received_at"] = pa.array(rxs, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    table = pa.table({name: arrays[name] for name in TRADE_COLUMNS})
    return table, [t.timestamp() for t in times]


def book_table(items: list) -> tuple:
    """``[[rx_µs, fields], …]`` → (pyarrow table of ``order_books`` rows, exchange times) — see :func:`trade_table`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rxs = [item[0] for item in items]
    cols = list(zip(*(item[1] for item in items)))
    arrays = {"ticker": pa.array(cols[0], pa.string()),
              "ts": pa.array(rxs, pa.int64()).cast(pa.timestamp("us", tz="UTC"))}
    for name, index in _BOOK_INTS.items():
        arrays[name] = pc.cast(pa.array(cols[index], pa.string()), pa.int64())
    times = [_kst_datetime(_kst_day(rx // 1_000_000), hhmmss).timestamp() for rx, hhmmss in zip(rxs, cols[1])]
    return pa.table({name: arrays[name] for name in BOOK_TABLE_COLUMNS}), times


def received_at(micros: int) -> dt.datetime:
    """The receipt time the trigger stamped on a record (µs since the epoch, unique per record)."""
    return dt.datetime.fromtimestamp(micros / 1e6, dt.timezone.utc)


def trade_row(fields: list[str], rx_micros: int) -> dict:
    """A ``trades`` row from one ``H0STCNT0``/``H0UNCNT0`` record (KST exchange time, exact integers).

    The key (ticker, ts, cum_volume): several trades in one second differ by the cumulative
    volume, which every trade increases; the same record delivered twice has the same key.
    """
    def i(n: int, name: str):
        return parse_int(fields[n], name)

    return {
        "ticker": fields[0], "ts": _kst_datetime(fields[33], fields[1]), "cum_volume": i(13, "ACML_VOL"),
        "price": i(2, "STCK_PRPR"), "change": i(4, "PRDY_VRSS"), "change_rate": parse_decimal(fields[5], "PRDY_CTRT"),
        "volume": i(12, "CNTG_VOL"), "cum_value": i(14, "ACML_TR_PBMN"), "side": _SIDE.get(fields[21]),
        "open": i(7, "STCK_OPRC"), "high": i(8, "STCK_HGPR"), "low": i(9, "STCK_LWPR"),
        "ask_price_1": i(10, "ASKP1"), "bid_price_1": i(11, "BIDP1"), "ask_qty_1": i(36, "ASKP_RSQN1"),
        "bid_qty_1": i(37, "BIDP_RSQN1"), "strength": parse_decimal(fields[18], "CTTR"),
        "halted": fields[35] == "Y", "hour_code": fields[43] or None, "received_at": received_at(rx_micros),
    }


def book_row(fields: list[str], rx_micros: int) -> dict:
    """An ``order_books`` row from one ``H0STASP0``/``H0UNASP0`` record.

    ``ts`` is the receipt time (µs, unique per record): books change many times a second and the
    push carries only the second (``BSOP_HOUR``), which :func:`book_exchange_time` gives for lag.
    """
    row: dict = {"ticker": fields[0], "ts": received_at(rx_micros)}
    for level in range(1, 11):
        row[f"ask_price_{level}"] = parse_int(fields[2 + level], f"ASKP{level}")
        row[f"bid_price_{level}"] = parse_int(fields[12 + level], f"BIDP{level}")
        row[f"ask_qty_{level}"] = parse_int(fields[22 + level], f"ASKP_RSQN{level}")
        row[f"bid_qty_{level}"] = parse_int(fields[32 + level], f"BIDP_RSQN{level}")
    row["total_ask_qty"] = parse_int(fields[43], "TOTAL_ASKP_RSQN")
    row["total_bid_qty"] = parse_int(fields[44], "TOTAL_BIDP_RSQN")
    return row


def book_exchange_time(fields: list[str], rx_micros: int) -> dt.datetime:
    """The exchange time of a book record: ``BSOP_HOUR`` on the KST day it was received."""
    return _kst_datetime(_kst_day(rx_micros // 1_000_000), fields[1])
