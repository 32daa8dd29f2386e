"""A session's 1-minute bars from KIS REST: the fetch (and what a ``kis_minute_bars`` run fetches).

Two TRs (``shared/reference/kis-open-api.md`` §6.1, checked against the official
open-trading-api samples ``inquire_time_itemchartprice`` / ``inquire_time_dailychartprice``):

* today: ``inquire-time-itemchartprice`` (``FHKST03010200``), 30 bars a call;
* a past day (up to a year back): ``inquire-time-dailychartprice`` (``FHKST03010230``,
  ``FID_INPUT_DATE_1``), 120 bars a call.

Both answer the bars at or before ``FID_INPUT_HOUR_1``, newest first; the next page asks for the
oldest bar's minute − 1. A ticker's day ends with a short page, a bar of an earlier day, or an
empty answer. Every call goes through :class:`~krxflow.kis.client.KisClient` (shared token,
the appkey's Redis rate limiter, ``EGW00201`` back-off), so the fetch shares the appkey's budget
with whatever else runs. Each page's bars go to the ``write`` callback :func:`fetch_day` is given;
:mod:`krxflow.intraday.minute_bars` upserts them on (ticker, minute) through the batched hook:
running a day twice rewrites the same rows (idempotent), and a bar KIS corrected replaces the old.

``value`` is the minute's traded KRW: the difference of KIS's cumulative ``acml_tr_pbmn`` between
consecutive bars of the day (the first bar of a complete day: its cumulative value; NULL where
the previous bar is not known).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

TR_TODAY = "FHKST03010200"
TR_PAST = "FHKST03010230"
TODAY_PATH = "/uapi/domestic-stock/v1/quotations/inquire-time-itemchartprice"
PAST_PATH = "/uapi/domestic-stock/v1/quotations/inquire-time-dailychartprice"
TODAY_ROWS = 30
PAST_ROWS = 120
#: First page's FID_INPUT_HOUR_1: after every venue's close (NXT trades to 20:00).
LAST_HOUR = "200000"
COLUMNS = ["ticker", "minute", "open", "high", "low", "close", "volume", "value"]


@dataclass
class FetchResult:
    """What one day's fetch did."""

    day: str
    tickers: int = 0
    requests: int = 0
    bars: int = 0
    empty_tickers: int = 0
    failed: list | None = None
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def previous_minute(hhmmss: str) -> str:
    """``HHMMSS`` one minute earlier (``"090000"`` → ``"085900"``)."""
    t = dt.datetime.strptime(hhmmss, "%H%M%S") - dt.timedelta(minutes=1)
    return t.strftime("%H%M%S")


def bar_rows(ticker: str, day: dt.date, output2: list[dict]) -> list[dict]:
    """``minute_bars`` rows of ``day`` from KIS bars (any order, other days dropped), oldest first."""
    from krxflow.kis.parsing import parse_int
    from krxflow.market_time import KST

    wanted = f"{day:%Y%m%d}"
    bars = sorted({b["stck_cntg_hour"]: b for b in output2 if b.get("stck_bsop_date") == wanted}.items())
    rows, previous = [], None
    for position, (hhmmss, bar) in enumerate(bars):
        cumulative = parse_int(bar["acml_tr_pbmn"], "acml_tr_pbmn")
        if previous is not None:
            value = cumulative - previous if cumulative is not None and cumulative >= previous else None
        else:
            value = cumulative if position == 0 and hhmmss <= "090000" else None
        previous = cumulative
        rows.append({"ticker": ticker,
                     "minute": dt.datetime.combine(day, dt.datetime.strptime(hhmmss, "%H%M%S").time(), KST),
                     "open": parse_int(bar["stck_oprc"], "stck_oprc"), "high": parse_int(bar["stck_hgpr"], "stck_hgpr"),
                     "low": parse_int(bar["stck_lwpr"], "stck_lwpr"), "close": parse_int(bar["stck_prpr"], "stck_prpr"),
                     "volume": parse_int(bar["cntg_vol"], "cntg_vol"), "value": value})
    return rows


def _request(market: str, ticker: str, day: dt.date, hour: str, today: bool) -> tuple[str, str, dict]:
    if today:
        return TODAY_PATH, TR_TODAY, {"FID_ETC_CLS_CODE": "", "FID_COND_MRKT_DIV_CODE": market,
                                      "FID_INPUT_ISCD": ticker, "FID_INPUT_HOUR_1": hour, "FID_PW_DATA_INCU_YN": "N"}
    return PAST_PATH, TR_PAST, {"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": ticker, "FID_INPUT_HOUR_1": hour,
                                "FID_INPUT_DATE_1": f"{day:%Y%m%d}", "FID_PW_DATA_INCU_YN": "N",
                                "FID_FAKE_TICK_INCU_YN": ""}


async def fetch_ticker_day(kis, ticker: str, day: dt.date, today: bool) -> tuple[list[dict], int]:
    """Every bar of ``ticker`` on ``day`` as KIS rows (newest first) and the number of calls made."""
    page_size = TODAY_ROWS if today else PAST_ROWS
    wanted, hour, bars, calls = f"{day:%Y%m%d}", LAST_HOUR, [], 0
    while True:
        path, tr_id, params = _request(kis.config.market, ticker, day, hour, today)
        body = await kis.get(path, tr_id, params)
        calls += 1
        page = [b for b in (body.get("output2") or []) if b.get("stck_cntg_hour")]
        of_day = [b for b in page if b.get("stck_bsop_date") == wanted]
        bars.extend(of_day)
        if len(page) < page_size or len(of_day) < len(page):
            return bars, calls
        oldest = min(b["stck_cntg_hour"] for b in of_day)
        if oldest <= "000000":
            return bars, calls
        hour = previous_minute(oldest)


async def fetch_day(config, redis, tickers: list[str], day: dt.date, *, today: bool, write, workers: int | None = None,
                    flush_rows: int = 50_000) -> FetchResult:
    """Fetch ``day``'s bars of every ticker at the appkey's rate; ``write(rows)`` (sync) stores them.

    ``workers`` concurrent tickers (default: enough to keep the limiter busy); rows are handed to
    ``write`` in a thread every ``flush_rows`` rows and at the end.
    """
    import time

    from krxflow.kis.client import KisClient
    from krxflow.kis.errors import KisConfigError, KisError

    started = time.monotonic()
    result = FetchResult(day=day.isoformat(), tickers=len(tickers), failed=[])
    queue: asyncio.Queue = asyncio.Queue()
    for ticker in tickers:
        queue.put_nowait(ticker)
    pending: list[dict] = []
    writing: list[asyncio.Task] = []

    def flush() -> None:
        nonlocal pending
        if pending:
            rows, pending = pending, []
            writing.append(asyncio.ensure_future(asyncio.to_thread(write, rows)))

    async with KisClient(config, redis) as kis:
        async def worker() -> None:
            while not queue.empty():
                ticker = queue.get_nowait()
                try:
                    bars, calls = await fetch_ticker_day(kis, ticker, day, today)
                except KisConfigError:
                    raise
                except KisError as exc:
                    log.warning("minute bars of %s on %s: %s", ticker, day, exc)
                    result.failed.append(ticker)
                    continue
                result.requests += calls
                rows = bar_rows(ticker, day, bars)
                result.bars += len(rows)
                result.empty_tickers += not rows
                pending.extend(rows)
                if len(pending) >= flush_rows:
                    flush()

        count = workers or max(4, int(config.rate * 2))
        await asyncio.gather(*(worker() for _ in range(min(count, len(tickers)) or 1)))
    flush()
    for written in await asyncio.gather(*writing):
        for name in ("inserted", "updated", "unchanged", "rejected"):
            setattr(result, name, getattr(result, name) + getattr(written, name))
    result.seconds = round(time.monotonic() - started, 3)
    return result


# ------------------------------------------------------------------ what a run fetches
#: param name: (Variable, default) — a run's Param overrides the Variable, the Variable the default.
SETTINGS = {
    "universe": ("kis_minute_bars_universe", "watchlist"),
    "top_n": ("kis_minute_bars_top_n", 200),
}


def universe(conn, value, top_n) -> list[str]:
    """The tickers: ``watchlist`` (the KIS watchlist), ``top`` (top ``top_n`` by market cap), ``all``
    (every listed stock, ~2,700), or explicit tickers (``"005930,000660"`` or a JSON list)."""
    from krxflow.kis import watchlist

    if value in (None, "", "watchlist"):
        return watchlist.from_variables(conn)
    if value == "top":
        return watchlist.resolve(conn, None, top_n)
    return watchlist.resolve(conn, value)


def days_to_fetch(session_day: dt.date, dates) -> list[str]:
    """The run's days (ISO): the given ``dates`` (backfill: trading days only, at most a year back),
    else the run's session day."""
    from krxflow.calendar import is_trading_day

    if not dates:
        return [session_day.isoformat()]
    wanted = sorted({dt.date.fromisoformat(str(d)) for d in dates})
    too_old = [d for d in wanted if (session_day - d).days > 365 or d > session_day]
    if too_old:
        raise ValueError(f"KIS keeps minute bars for a year: {too_old[0]} is outside {session_day} − 365 days")
    return [d.isoformat() for d in wanted if is_trading_day(d)]


def tickers_to_fetch(params: dict, conn) -> list[str]:
    """The run's universe from its params and the Variables (see :data:`SETTINGS`)."""
    from krxflow.kis.session import setting

    return universe(conn, setting("universe", params, SETTINGS), int(setting("top_n", params, SETTINGS)))
