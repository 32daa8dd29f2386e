"""The fake KIS gateway's 1-minute bar TRs (registered by :func:`krxflow.sample.kis_server.make_app`).

As ``shared/reference/kis-open-api.md`` §6.1 and the official open-trading-api samples describe them:

* ``GET …/quotations/inquire-time-itemchartprice`` (``FHKST03010200``, today only): query
  ``FID_ETC_CLS_CODE``, ``FID_COND_MRKT_DIV_CODE``, ``FID_INPUT_ISCD``, ``FID_INPUT_HOUR_1``
  (``HHMMSS``: bars at or before it; a future time means "now"), ``FID_PW_DATA_INCU_YN``
  (``Y``: continue into the previous session); at most **30 rows**, newest first.
* ``GET …/quotations/inquire-time-dailychartprice`` (``FHKST03010230``, live accounts only — paper
  answers ``EGW02006``): the same plus ``FID_INPUT_DATE_1`` (``YYYYMMDD``) and
  ``FID_FAKE_TICK_INCU_YN``; at most **120 rows**, newest first; nothing older than a year.

Every parameter is required (a missing one answers ``OPSQ0002``); the gateway's checks (appkey,
token, ``tr_id``, the per-appkey ``EGW00201`` window) are the server's own. ``output1`` is the
day's summary, ``output2`` the bars with string values: ``stck_bsop_date``, ``stck_cntg_hour``,
``stck_prpr`` (close), ``stck_oprc``, ``stck_hgpr``, ``stck_lwpr``, ``cntg_vol`` (the minute's
volume), ``acml_tr_pbmn`` (the day's cumulative traded value up to that bar).

A session's bars run 09:00–15:19 every minute plus the 15:30 closing auction (381 bars); a
ticker's bars are a deterministic random walk of (ticker, date), so a re-fetch returns the same
rows. :class:`MinuteBarMarket` holds "today" and "now" (``HHMMSS`` in the market's zone; None:
the clock), which bound today's bars; tests set them.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib

from aiohttp import web

TR_TODAY = "FHKST03010200"
TR_PAST = "FHKST03010230"
TODAY_PATH = "/uapi/domestic-stock/v1/quotations/inquire-time-itemchartprice"
PAST_PATH = "/uapi/domestic-stock/v1/quotations/inquire-time-dailychartprice"
TODAY_ROWS = 30
PAST_ROWS = 120
RETAINED_DAYS = 365

TODAY_PARAMS = ("FID_ETC_CLS_CODE", "FID_COND_MRKT_DIV_CODE", "FID_INPUT_ISCD", "FID_INPUT_HOUR_1",
                "FID_PW_DATA_INCU_YN")
PAST_PARAMS = ("FID_COND_MRKT_DIV_CODE", "FID_INPUT_ISCD", "FID_INPUT_HOUR_1", "FID_INPUT_DATE_1",
               "FID_PW_DATA_INCU_YN", "FID_FAKE_TICK_INCU_YN")


def session_minutes() -> list[str]:
    """``HHMMSS`` of a KRX session's bars: 09:00 … 15:19, then the 15:30 closing auction."""
    minutes = [f"{h:02d}{m:02d}00" for h in range(9, 16) for m in range(60) if (h, m) < (15, 20)]
    return minutes + ["153000"]


def day_bars(ticker: str, day: dt.date) -> list[dict]:
    """The session's bars of ``ticker`` on ``day``, oldest first, as KIS's ``output2`` rows."""
    rng = random.Random(zlib.crc32(f"{ticker}{day:%Y%m%d}".encode()))
    price = 1000 + zlib.crc32(ticker.encode()) % 90_000
    cumulative = 0
    bars = []
    for hhmmss in session_minutes():
        open_ = price
        close = max(10, open_ + rng.randint(-3, 3) * 10)
        high = max(open_, close) + rng.randint(0, 2) * 10
        low = max(1, min(open_, close) - rng.randint(0, 2) * 10)
        volume = rng.randint(0, 5000)
        cumulative += volume * close
        bars.append({"stck_bsop_date": f"{day:%Y%m%d}", "stck_cntg_hour": hhmmss, "stck_prpr": str(close),
                     "stck_oprc": str(open_), "stck_hgpr": str(high), "stck_lwpr": str(low),
                     "cntg_vol": str(volume), "acml_tr_pbmn": str(cumulative)})
        price = close
    return bars


def _previous_weekday(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


class MinuteBarMarket:
    """What the two TRs answer (see the module doc)."""

    def __init__(self, zone: dt.tzinfo, today: dt.date | None = None, now: str | None = None) -> None:
        self.zone = zone
        self._today = today
        self.now = now

    def today(self) -> dt.date:
        return self._today or dt.datetime.now(self.zone).date()

    def clock(self) -> str:
        return self.now or dt.datetime.now(self.zone).strftime("%H%M%S")

    def page(self, ticker: str, day: dt.date, hour: str, rows: int, previous_days: bool, up_to: str) -> list[dict]:
        """Up to ``rows`` bars at or before ``day`` ``hour`` (not after ``up_to`` today), newest first."""
        if day.weekday() >= 5:
            return []
        newest = min(hour, up_to) if day == self.today() else hour
        out = [bar for bar in reversed(day_bars(ticker, day)) if bar["stck_cntg_hour"] <= newest][:rows]
        if previous_days and len(out) < rows:
            out += list(reversed(day_bars(ticker, _previous_weekday(day))))[:rows - len(out)]
        return out

    @staticmethod
    def summary(ticker: str, bars: list[dict]) -> dict:
        last = bars[0] if bars else {"stck_prpr": "0", "acml_tr_pbmn": "0"}
        return {"prdy_vrss": "0", "prdy_vrss_sign": "3", "prdy_ctrt": "0.00", "stck_prdy_clpr": last["stck_prpr"],
                "acml_vol": "0", "acml_tr_pbmn": last["acml_tr_pbmn"], "hts_kor_isnm": f"종목{ticker}",
                "stck_prpr": last["stck_prpr"]}


def _missing(query: dict, names: tuple[str, ...]) -> web.Response | None:
    if any(name not in query for name in names):
        return web.json_response({"rt_cd": "1", "msg1": "필수항목 입력값이 누락되었습니다.", "msg_cd": "OPSQ0002"},
                                 status=500)
    return None


def _hour(value: str) -> str | None:
    return value if len(value) == 6 and value.isdigit() else None


def register(app: web.Application, fake, quote, market: MinuteBarMarket) -> MinuteBarMarket:
    """Add both TRs to ``app``; ``quote(request, tr_id, answer)`` runs the gateway's checks first."""
    envelope = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다."}
    invalid = {"rt_cd": "1", "msg_cd": "OPSQ0003", "msg1": "입력값이 유효하지 않습니다."}

    def today(query: dict, code: str):
        if (refused := _missing(query, TODAY_PARAMS)) is not None:
            return refused
        hour = _hour(query["FID_INPUT_HOUR_1"])
        if hour is None:
            return web.json_response(invalid, status=500)
        bars = market.page(code, market.today(), hour, TODAY_ROWS, query["FID_PW_DATA_INCU_YN"] == "Y",
                           market.clock())
        return {"output1": market.summary(code, bars), "output2": bars, **envelope}

    def past(query: dict, code: str):
        if fake.env != "live":
            return web.json_response({"rt_cd": "1", "msg_cd": "EGW02006", "msg1": "모의투자 TR 이 아닙니다."},
                                     status=500)
        if (refused := _missing(query, PAST_PARAMS)) is not None:
            return refused
        hour = _hour(query["FID_INPUT_HOUR_1"])
        try:
            day = dt.datetime.strptime(query["FID_INPUT_DATE_1"], "%Y%m%d").date()
        except ValueError:
            day = None
        if hour is None or day is None:
            return web.json_response(invalid, status=500)
        if day > market.today() or (market.today() - day).days > RETAINED_DAYS:
            bars = []
        else:
            bars = market.page(code, day, hour, PAST_ROWS, query["FID_PW_DATA_INCU_YN"] == "Y", market.clock())
        return {"output1": market.summary(code, bars), "output2": bars, **envelope}

    async def today_handler(request: web.Request) -> web.Response:
        return await quote(request, TR_TODAY, today)

    async def past_handler(request: web.Request) -> web.Response:
        return await quote(request, TR_PAST, past)

    app.router.add_get(TODAY_PATH, today_handler)
    app.router.add_get(PAST_PATH, past_handler)
    return market
