"""A strict fake of OpenDART (opendart.fss.or.kr), for tests, the sample mode and the bench.

It follows ``shared/reference/dart-krx-openapi-universes.md`` §1:

* every request carries ``crtfc_key``: an unknown key answers status ``010``, a suspended one
  ``011``, an expired one ``901`` (JSON ``{"status", "message"}``, HTTP 200 like OpenDART; the
  ZIP service answers the same as XML ``<result><status/><message/></result>``);
* a per-key **daily count** (KST day): once a key has sent more than ``daily_limit`` requests
  that day, every request answers ``020``;
* ``GET /api/corpCode.xml``: a ZIP holding ``CORPCODE.xml`` — ``<result>`` with one ``<list>``
  per company (``corp_code``, ``corp_name``, ``corp_eng_name``, ``stock_code`` — a single space for
  an unlisted company — and ``modify_date``);
* ``GET /api/list.json``: filings by receipt date, newest receipt number first, paged
  (``page_no`` ≥ 1, ``page_count`` 1–100 else status ``100``); without ``corp_code`` a
  ``bgn_de``..``end_de`` window longer than 3 months is refused (status ``100`` and a message, as
  OpenDART limits such searches to 3 months); ``corp_cls`` Y/K/N/E filters; no filing (or a page
  past the last) answers ``013`` without a ``list`` key. Page counters are integers.
* ``fail_next``: n answers are HTTP 500 (a transient fault) after ``fail_skip`` normal ones;
  ``maintenance_next``: the next n answer status ``800``; ``arrivals`` holds when each request
  came (``time.monotonic()``), for tests of the gate.
* ``GET /api/fnlttMultiAcnt.json``: the major accounts (매출액, 영업이익, 법인세차감전 순이익,
  당기순이익, 자산총계, 부채총계, 자본총계, 자본금; BS and IS, CFS and OFS rows) of up to 100
  comma-separated ``corp_code`` (more: status ``021``) for ``bsns_year`` (≥ 2015) and ``reprt_code``
  (11011 annual, 11012 half, 11013 Q1, 11014 Q3; else ``100``). A company's statement exists only
  once its periodic report is among the filings (on or before the fake's ``today``) and carries
  that filing's ``rcept_no``; no company with one answers ``013``. Amounts are strings with commas,
  deterministic per company and period. ``corrections[(corp_code, bsns_year, reprt_code)] = day``
  files a ``[기재정정]`` report on ``day``: from then on its figures (revenue and net income 3 %
  lower) and its ``rcept_no`` are served.
* ``GET /api/piicDecsn.json`` / ``fricDecsn.json`` / ``crDecsn.json`` (DS005 material events:
  rights issue, bonus issue, capital reduction): ``corp_code`` required (else ``100``),
  ``bgn_de``..``end_de``; one row per filing in that window whose ``report_nm`` names the event
  (``주요사항보고서(유상증자결정)`` …, corrections included), ``013`` when none. Values are display
  strings as OpenDART's: numbers with commas, dates ``"2024년 04월 10일"``, ``"-"`` for empty.

**The companies** are the sample market's (:class:`krxflow.sample.market.SampleMarket`): ticker
= ``stock_code``, the market (KOSPI ``Y`` / KOSDAQ ``K``) = ``corp_cls``, the name = ``corp_name``,
so that disclosures link to ``stocks``; plus unlisted companies (``stock_code`` " ", class ``E``).
**The filings** of a day are drawn from a generator seeded by the date (the same on every run and
machine): periodic reports in their seasons (``사업보고서 (2025.12)`` in March, quarterly reports
in May and November, half-year reports in August; each company files each once, on a weekday of
its season chosen by its corp_code), material-event reports
(``주요사항보고서(유상증자결정)`` …), ownership reports and exchange disclosures; weekends have none.
:meth:`FakeDart.filings` is the truth a test compares a load against.

Tests serve it in a thread (:class:`FakeDartThread`); as a process::

    python -m krxflow.sample.dart_server --host 127.0.0.1 --port 18090 [--daily-limit 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import random
import time
import zipfile
import zlib
from collections import Counter
from functools import lru_cache
from xml.sax.saxutils import escape

from aiohttp import web

from krxflow.market_time import kst_date, kst_today
from krxflow.sample.serving import FakeAppThread, serve_app

__all__ = ["DEMO_KEY", "FakeDart", "FakeDartThread", "connection_json", "corp_code_of"]

#: The demo key (40 characters, like OpenDART's): what the sample mode and the tests use.
DEMO_KEY = "fakekrxflowdemoopendartkey00000000000000"
#: Reported daily limit of one OpenDART key (the reference: ~20,000; an old guide says 10,000).
DAILY_LIMIT = 20_000
#: OpenDART searches without corp_code over at most this many months.
WINDOW_MONTHS = 3

MESSAGES = {
    "000": "정상", "010": "등록되지 않은 키입니다.", "011": "사용할 수 없는 키입니다.",
    "012": "접근할 수 없는 IP입니다.", "013": "조회된 데이타가 없습니다.", "020": "요청 제한을 초과하였습니다.",
    "100": "필드의 부적절한 값입니다.", "101": "부적절한 접근입니다.", "800": "시스템 점검으로 인한 서비스가 중지 중입니다.",
    "021": "조회 가능한 회사 개수가 초과하였습니다.(최대 100건)",
    "901": "사용자 계정의 개인정보 보유기간이 만료되어 사용할 수 없는 키입니다.",
}
#: fnlttMultiAcnt answers at most this many companies per request (more: status 021).
MULTI_LIMIT = 100
#: reprt_code -> (report kind, closing month of the period) for a December fiscal year.
REPORT_NAMES = {"11011": ("사업보고서", 12), "11012": ("반기보고서", 6), "11013": ("분기보고서", 3),
                "11014": ("분기보고서", 9)}
#: DS005 services the fake answers -> the event its report names (주요사항보고서(<event>)).
EVENT_APIS = {"piicDecsn": "유상증자결정", "fricDecsn": "무상증자결정", "crDecsn": "감자결정"}
CORP_CLASS = {"KOSPI": "Y", "KOSDAQ": "K", "KONEX": "N"}

# Filing kinds outside the seasons: (report name, weight, filer: "self"/"holder"/"exchange", rm by class)
_EVENT_REPORTS = (
    ("주요사항보고서(유상증자결정)", 3, "self", {"Y": "", "K": ""}),
    ("주요사항보고서(무상증자결정)", 1, "self", {"Y": "", "K": ""}),
    ("주요사항보고서(감자결정)", 1, "self", {"Y": "", "K": ""}),
    ("주요사항보고서(자기주식취득결정)", 2, "self", {"Y": "", "K": ""}),
    ("주요사항보고서(회사합병결정)", 1, "self", {"Y": "", "K": ""}),
    ("임원ㆍ주요주주특정증권등소유상황보고서", 14, "holder", {"Y": "", "K": ""}),
    ("주식등의대량보유상황보고서(일반)", 6, "holder", {"Y": "", "K": ""}),
    ("단일판매ㆍ공급계약체결", 5, "self", {"Y": "유", "K": ""}),
    ("기업설명회(IR)개최(안내공시)", 3, "self", {"Y": "유", "K": ""}),
    ("주식명의개서정지(주주명부폐쇄)", 2, "self", {"Y": "유", "K": ""}),
    ("대규모기업집단현황공시[분기별공시(개별회사용)]", 2, "self", {"Y": "공", "K": "공"}),
    ("[기재정정]주요사항보고서(유상증자결정)", 1, "self", {"Y": "정", "K": "정"}),
)
_HOLDERS = ("국민연금공단", "김민준", "이서연", "박지훈", "최수아", "블랙록펀드어드바이저스", "한국투자신탁운용")


def corp_code_of(index: int, listed: bool = True) -> str:
    """The 8-digit corp_code of the sample company at ``index`` (listed, or of the unlisted ones)."""
    return f"{(126_000 if listed else 500_000) + index * 37:08d}"


def _seasonal(day: dt.date) -> tuple[str, int, str] | None:
    """The periodic report due in ``day``'s filing season: (its name, business year, reprt_code)."""
    y, m = day.year, day.month
    if m == 3 and day.day >= 10:
        return f"사업보고서 ({y - 1}.12)", y - 1, "11011"
    if m == 5 and day.day >= 8:
        return f"분기보고서 ({y}.03)", y, "11013"
    if m == 8 and day.day >= 7:
        return f"반기보고서 ({y}.06)", y, "11012"
    if m == 11 and day.day >= 7:
        return f"분기보고서 ({y}.09)", y, "11014"
    return None


def _filer_day(corp_code: str, year: int, reprt_code: str) -> dt.date:
    """The one weekday of its season a company files its ``year``/``reprt_code`` periodic report."""
    weekdays = [d for d in _filing_days(year, reprt_code) if d.weekday() < 5]
    return weekdays[zlib.crc32(f"{corp_code}:{year}:{reprt_code}".encode()) % len(weekdays)]


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


class FakeDart:
    """The state of a fake OpenDART: its companies, keys, counters and faults.

    :param companies: listed companies, taken from the sample market of that many tickers
        (default ``KRXFLOW_SAMPLE_TICKERS`` or 2,700).
    :param unlisted: unlisted companies (default: half as many).
    :param daily_limit: requests per key and KST day before status 020.
    :param filings_per_company: mean filings per listed company on a weekday outside the seasons.
    """

    def __init__(self, companies: int | None = None, *, unlisted: int | None = None, keys=(DEMO_KEY,),
                 daily_limit: int = DAILY_LIMIT, filings_per_company: float = 0.06, today=None) -> None:
        from krxflow.sample.market import SampleMarket

        self.market = SampleMarket(companies)
        self.unlisted = self.market.count // 2 if unlisted is None else int(unlisted)
        self.keys = set(keys)
        self.suspended: set[str] = set()
        self.expired: set[str] = set()
        self.daily_limit = daily_limit
        self.filings_per_company = filings_per_company
        self.today = today  # None: the real KST date (the daily count's day)
        self.fail_next = 0
        self.fail_skip = 0  # answers let through before the fail_next ones (a fault on page n)
        self.maintenance_next = 0
        #: (corp_code, bsns_year, reprt_code) -> the KST date a [기재정정] periodic report is filed
        self.corrections: dict[tuple[str, str, str], dt.date] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every count (not the configuration)."""
        self.requests: Counter = Counter()  # by API name ("list", "corpCode")
        self.statuses: Counter = Counter()
        self.daily: Counter = Counter()  # by (key, KST date)
        self.log: list[tuple[str, dict]] = []  # (API name, query) of every request
        self.arrivals: list[float] = []  # time.monotonic() of every request's arrival

    # ------------------------------------------------------------------ the truth
    @lru_cache(maxsize=1)
    def companies(self) -> list[dict]:
        """Every company of ``CORPCODE.xml``: listed ones (the sample market's tickers) then unlisted."""
        rows = []
        for i, ticker in enumerate(self.market.tickers):
            p = self.market.profile(ticker)
            rows.append({"corp_code": corp_code_of(i), "corp_name": p.name, "corp_eng_name": f"Sample Corp {i:04d}",
                         "stock_code": ticker, "modify_date": f"{2017 + i % 9}{1 + i % 12:02d}{1 + i % 28:02d}",
                         "corp_cls": CORP_CLASS[p.market]})
        for i in range(self.unlisted):
            rows.append({"corp_code": corp_code_of(i, listed=False), "corp_name": f"비상장{i:05d}",
                         "corp_eng_name": "", "stock_code": " ", "modify_date": f"{2015 + i % 11}0630",
                         "corp_cls": "E"})
        return rows

    def filings(self, day) -> list[dict]:
        """Every filing received on ``day`` (all classes), newest receipt number first, as list.json rows."""
        return list(self.day_filings(kst_date(day)))

    def day_filings(self, day: dt.date) -> tuple[dict, ...]:
        """The generated filings of ``day`` plus the corrections filed that day, newest first."""
        base = _day_filings(self, day)
        extra = [self._correction_row(key, day) for key, on in self.corrections.items() if on == day]
        if not extra:
            return base
        return tuple(sorted((*base, *extra), key=lambda r: r["rcept_no"], reverse=True))

    def _correction_row(self, key: tuple[str, str, str], day: dt.date) -> dict:
        corp_code, year, reprt_code = key
        company = next(c for c in self.companies() if c["corp_code"] == corp_code)
        seq = 990000 + sorted(self.corrections).index(key)
        return {"corp_code": corp_code, "corp_name": company["corp_name"], "stock_code": company["stock_code"],
                "corp_cls": company["corp_cls"], "report_nm": "[기재정정]" + periodic_report_name(year, reprt_code),
                "rcept_no": f"{day:%Y%m%d}{seq:06d}", "flr_nm": company["corp_name"], "rcept_dt": f"{day:%Y%m%d}",
                "rm": "정"}

    def periodic_filing(self, corp_code: str, year: str, reprt_code: str) -> dict | None:
        """The latest filing (original or correction) of a company's periodic report known on ``today``."""
        today = kst_date(self.today) if self.today is not None else kst_today()
        found = _periodic_index(self, year, reprt_code).get(corp_code)
        if found is None or kst_date(found["rcept_dt"]) > today:
            return None
        corrected = self.corrections.get((corp_code, year, reprt_code))
        if corrected is not None and corrected <= today:
            return self._correction_row((corp_code, year, reprt_code), corrected)
        return found

    def statements(self, corp_code: str, year: str, reprt_code: str) -> list[dict]:
        """fnlttMultiAcnt's rows of one company's report as known on ``today`` ([] when not filed)."""
        filing = self.periodic_filing(corp_code, year, reprt_code)
        if filing is None:
            return []
        return _statement_rows(filing, year, reprt_code, corrected=filing["report_nm"].startswith("[기재정정]"))

    def event(self, api: str, query) -> dict:
        """The DS005 answer of ``api`` (piicDecsn/fricDecsn/crDecsn) to ``query`` (past the key check)."""
        corp_code = query.get("corp_code") or ""
        if len(corp_code) != 8 or not corp_code.isdigit():
            return {"status": "100", "message": f"{MESSAGES['100']} (corp_code is required)"}
        try:
            end = _yyyymmdd(query.get("end_de")) or kst_today()
            begin = _yyyymmdd(query.get("bgn_de")) or end
        except ValueError as exc:
            return {"status": "100", "message": f"{MESSAGES['100']} ({exc})"}
        rows, day = [], end
        while day >= begin:
            rows.extend(_event_row(api, r) for r in self.day_filings(day)
                        if r["corp_code"] == corp_code and EVENT_APIS[api] in r["report_nm"])
            day -= dt.timedelta(days=1)
        if not rows:
            return {"status": "013", "message": MESSAGES["013"]}
        return {"status": "000", "message": MESSAGES["000"], "list": rows}

    def multi_accounts(self, query) -> dict:
        """The fnlttMultiAcnt.json answer to ``query`` (already past the key check)."""
        codes = [c for c in (query.get("corp_code") or "").split(",") if c]
        year, reprt_code = query.get("bsns_year", ""), query.get("reprt_code", "")
        if not codes or any(len(c) != 8 or not c.isdigit() for c in codes):
            return {"status": "100", "message": f"{MESSAGES['100']} (corp_code)"}
        if len(codes) > MULTI_LIMIT:
            return {"status": "021", "message": MESSAGES["021"]}
        if not (len(year) == 4 and year.isdigit() and int(year) >= 2015):
            return {"status": "100", "message": f"{MESSAGES['100']} (bsns_year must be 2015 or later)"}
        if reprt_code not in REPORT_NAMES:
            return {"status": "100", "message": f"{MESSAGES['100']} (reprt_code)"}
        rows = [row for code in dict.fromkeys(codes) for row in self.statements(code, year, reprt_code)]
        if not rows:
            return {"status": "013", "message": MESSAGES["013"]}
        return {"status": "000", "message": MESSAGES["000"], "list": rows}

    def __hash__(self) -> int:
        return id(self)

    # ------------------------------------------------------------------ the wire
    def count(self, key: str) -> str | None:
        """Count one request of ``key``; the status it must answer instead of data, if any."""
        if key not in self.keys:
            return "010"
        if key in self.suspended:
            return "011"
        if key in self.expired:
            return "901"
        day = kst_date(self.today) if self.today is not None else kst_today()
        self.daily[(key, day)] += 1
        if self.daily[(key, day)] > self.daily_limit:
            return "020"
        if self.maintenance_next > 0:
            self.maintenance_next -= 1
            return "800"
        return None

    def arrive(self, api: str, query) -> bool:
        """Record a request; True when it must fail with HTTP 500 (``fail_skip``/``fail_next``)."""
        self.arrivals.append(time.monotonic())
        self.requests[api] += 1
        self.log.append((api, dict(query)))
        if self.fail_next > 0:
            if self.fail_skip > 0:
                self.fail_skip -= 1
                return False
            self.fail_next -= 1
            return True
        return False

    def sent_today(self, key: str = DEMO_KEY) -> int:
        day = kst_date(self.today) if self.today is not None else kst_today()
        return self.daily[(key, day)]

    def search(self, query) -> dict:
        """The list.json answer to ``query`` (already past the key check)."""
        def bad(message: str) -> dict:
            return {"status": "100", "message": f"{MESSAGES['100']} ({message})"}

        try:
            page_no = int(query.get("page_no", "1"))
            page_count = int(query.get("page_count", "10"))
        except ValueError:
            return bad("page_no/page_count must be numbers")
        if page_no < 1:
            return bad("page_no must be at least 1")
        if not 1 <= page_count <= 100:
            return bad(f"page_count must be 1-100, got {page_count}")
        try:
            end = _yyyymmdd(query.get("end_de")) or kst_today()
            begin = _yyyymmdd(query.get("bgn_de")) or end
        except ValueError as exc:
            return bad(str(exc))
        if begin > end:
            return bad("bgn_de is after end_de")
        corp_code = query.get("corp_code")
        if corp_code is not None and (len(corp_code) != 8 or not corp_code.isdigit()):
            return bad("corp_code must be 8 digits")
        if corp_code is None and _add_months(begin, WINDOW_MONTHS) < end:
            return bad("corp_code 없이 검색기간은 3개월까지 조회 가능합니다 (without corp_code the window is "
                       "limited to 3 months)")
        corp_cls = query.get("corp_cls")
        if corp_cls is not None and corp_cls not in ("Y", "K", "N", "E"):
            return bad("corp_cls must be Y, K, N or E")
        rows = []
        day = end
        while day >= begin:
            rows.extend(r for r in self.day_filings(day)
                        if (corp_cls is None or r["corp_cls"] == corp_cls)
                        and (corp_code is None or r["corp_code"] == corp_code))
            day -= dt.timedelta(days=1)
        total_page = -(-len(rows) // page_count)
        if not rows or page_no > total_page:
            return {"status": "013", "message": MESSAGES["013"]}
        return {"status": "000", "message": MESSAGES["000"], "page_no": page_no, "page_count": page_count,
                "total_count": len(rows), "total_page": total_page,
                "list": rows[(page_no - 1) * page_count: page_no * page_count]}

    def corp_code_zip(self) -> bytes:
        """``corpCode.xml``'s ZIP: ``CORPCODE.xml`` in OpenDART's shape."""
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<result>']
        for c in self.companies():
            parts.append("<list>" + "".join(f"<{f}>{escape(c[f])}</{f}>" for f in
                                            ("corp_code", "corp_name", "corp_eng_name", "stock_code", "modify_date"))
                         + "</list>")
        parts.append("</result>")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("CORPCODE.xml", "\n".join(parts).encode("utf-8"))
        return buffer.getvalue()


def periodic_report_name(year: str, reprt_code: str) -> str:
    """The report name list.json shows for a December-year company's periodic report."""
    kind, month = REPORT_NAMES[reprt_code]
    return f"{kind} ({year}.{month:02d})"


def _filing_days(year: int, reprt_code: str) -> list[dt.date]:
    """The days a periodic report of ``year`` can be filed in the fake (its season)."""
    first = {"11011": dt.date(year + 1, 3, 10), "11013": dt.date(year, 5, 8), "11012": dt.date(year, 8, 7),
             "11014": dt.date(year, 11, 7)}[reprt_code]
    last = _add_months(first.replace(day=1), 1) - dt.timedelta(days=1)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@lru_cache(maxsize=64)
def _periodic_index(fake: "FakeDart", year: str, reprt_code: str) -> dict[str, dict]:
    """corp_code -> the original filing of its ``year``/``reprt_code`` periodic report (the generated ones)."""
    name, found = periodic_report_name(year, reprt_code), {}
    for day in _filing_days(int(year), reprt_code):
        for row in _day_filings(fake, day):
            if row["report_nm"] == name and row["corp_cls"] in ("Y", "K"):
                found.setdefault(row["corp_code"], row)
    return found


_ACCOUNTS = (  # (sj_div, account_nm, multiple of the year's revenue; IS items after 매출액: of the margin)
    ("BS", "유동자산", 0.55), ("BS", "비유동자산", 0.75), ("BS", "자산총계", 1.30), ("BS", "유동부채", 0.30),
    ("BS", "비유동부채", 0.22), ("BS", "부채총계", 0.52), ("BS", "자본금", 0.04), ("BS", "이익잉여금", 0.50),
    ("BS", "자본총계", 0.78),
    ("IS", "매출액", 1.0), ("IS", "영업이익", 1.0), ("IS", "법인세차감전 순이익", 1.05), ("IS", "당기순이익", 0.78),
)
_STATEMENT_NAMES = {"BS": "재무상태표", "IS": "손익계산서"}
_FS_NAMES = {"CFS": "연결재무제표", "OFS": "재무제표"}
#: reprt_code -> (the IS period's share of a year, the cumulative share)
_PERIOD = {"11011": (1.0, 1.0), "11012": (0.5, 0.5), "11013": (0.25, 0.25), "11014": (0.25, 0.75)}
#: A correction's revenue and net income are this share of the original's.
CORRECTION_SHARE = 0.97


def _amount(value: float) -> str:
    return f"{int(round(value)):,}"


def _statement_rows(filing: dict, year: str, reprt_code: str, *, corrected: bool) -> list[dict]:
    """Deterministic, plausible major accounts of one filing: 2015 revenue from 30 bn to 3 tn KRW,
    an operating margin of -5..18 %, growth of -10..+20 % a year; BS at the period's end, IS over its
    period (3 months in Q1/Q3, 6 in the half-year; ``*_add_amount`` cumulative), OFS 80 % of CFS."""
    seed = zlib.crc32(filing["corp_code"].encode())
    base = 30e9 * (100 ** ((seed % 1000) / 1000))
    growth = 0.9 + (seed >> 10) % 300 / 1000
    margin = -0.05 + (seed >> 20) % 230 / 1000
    y, closing = int(year), REPORT_NAMES[reprt_code][1]
    part, cumulative = _PERIOD[reprt_code]
    quarterly = reprt_code != "11011"

    def annual(sj: str, account: str, multiple: float, year_: int, fs: str, this: bool) -> float:
        revenue = base * growth ** (year_ - 2015) * (1 + 0.05 * (zlib.crc32(f"{seed}:{year_}".encode()) % 7 - 3) / 3)
        value = revenue * (0.8 if fs == "OFS" else 1.0) * multiple
        if sj == "IS" and account != "매출액":
            value *= margin
        if this and corrected and account in ("매출액", "당기순이익"):
            value *= CORRECTION_SHARE
        return value

    end = f"{y}.{closing:02d}.{31 if closing in (3, 12) else 30}"
    rows = []
    for fs in ("CFS", "OFS"):
        for order, (sj, account, multiple) in enumerate(_ACCOUNTS, start=1):
            this, prior = (annual(sj, account, multiple, y, fs, True), annual(sj, account, multiple, y - 1, fs, False))
            row = {"rcept_no": filing["rcept_no"], "reprt_code": reprt_code, "bsns_year": year,
                   "corp_code": filing["corp_code"], "stock_code": filing["stock_code"], "fs_div": fs,
                   "fs_nm": _FS_NAMES[fs], "sj_div": sj, "sj_nm": _STATEMENT_NAMES[sj], "account_nm": account,
                   "thstrm_nm": f"제 {y - 1969} 기" + ({"11011": "", "11012": " 반기"}.get(reprt_code, " 분기")),
                   "thstrm_dt": f"{end} 현재" if sj == "BS" else f"{y}.01.01 ~ {end}",
                   "thstrm_amount": _amount(this * part if sj == "IS" else this),
                   "frmtrm_nm": f"제 {y - 1970} 기" + ("말" if sj == "BS" else ""),
                   "frmtrm_dt": f"{y - 1}.12.31 현재" if sj == "BS" else f"{y - 1}.01.01 ~ {y - 1}.{end[5:]}",
                   "frmtrm_amount": _amount(prior * part if sj == "IS" else prior),
                   "ord": str(order), "currency": "KRW"}
            if quarterly and sj == "IS":
                row["thstrm_add_amount"] = _amount(this * cumulative)
                row["frmtrm_add_amount"] = _amount(prior * cumulative)
            if not quarterly:
                row.update({"bfefrmtrm_nm": f"제 {y - 1971} 기", "bfefrmtrm_dt": f"{y - 2}.12.31",
                            "bfefrmtrm_amount": _amount(annual(sj, account, multiple, y - 2, fs, False))})
            rows.append(row)
    return rows


def _korean_date(day: dt.date) -> str:
    return f"{day.year}년 {day.month:02d}월 {day.day:02d}일"


def event_dates(rcept_no: str) -> dict[str, dt.date]:
    """The board, record and listing dates of a material event filed as ``rcept_no`` (deterministic):
    board = the receipt date, record date 15-40 days later, new shares listed 20-30 days after that."""
    filed = dt.datetime.strptime(rcept_no[:8], "%Y%m%d").date()
    seed = zlib.crc32(rcept_no.encode())
    record = filed + dt.timedelta(days=15 + seed % 26)
    while record.weekday() >= 5:
        record += dt.timedelta(days=1)
    return {"board": filed, "record": record, "listing": record + dt.timedelta(days=20 + (seed >> 8) % 11)}


def _event_row(api: str, filing: dict) -> dict:
    """One DS005 row of a filing: plausible, deterministic share counts and ratios."""
    seed = zlib.crc32(("event:" + filing["rcept_no"]).encode())
    before = 10_000_000 + seed % 90_000_000
    dates = event_dates(filing["rcept_no"])
    row = {"rcept_no": filing["rcept_no"], "corp_cls": filing["corp_cls"], "corp_code": filing["corp_code"],
           "corp_name": filing["corp_name"], "fv_ps": f"{(100, 500, 1000, 5000)[seed % 4]:,}", "bddd": _korean_date(dates["board"])}
    if api == "piicDecsn":
        new = before * (5 + seed % 26) // 100
        row.update({"nstk_ostk_cnt": f"{new:,}", "nstk_estk_cnt": "-", "bfic_tisstk_ostk": f"{before:,}",
                    "bfic_tisstk_estk": "-", "fdpp_fclt": "-", "fdpp_op": f"{new * 5000:,}", "ic_mthn": "주주배정후 실권주 일반공모",
                    "ssl_at": "-", "ssl_bgd": "-", "ssl_edd": "-"})
    elif api == "fricDecsn":
        per_share = (0.5, 1.0, 0.2, 2.0)[seed % 4]
        row.update({"nstk_ostk_cnt": f"{int(before * per_share):,}", "nstk_estk_cnt": "-",
                    "bfic_tisstk_ostk": f"{before:,}", "bfic_tisstk_estk": "-",
                    "nstk_asstd": _korean_date(dates["record"]), "nstk_ascnt_ps_ostk": f"{per_share}",
                    "nstk_ascnt_ps_estk": "-", "nstk_dividrk": "2024년 01월 01일", "nstk_dlprd": "-",
                    "nstk_lstprd": _korean_date(dates["listing"]), "od_a_at_t": "-", "od_a_at_b": "-",
                    "adt_a_atn": "-"})
    else:
        rate = (50.0, 80.0, 90.0, 66.67)[seed % 4]
        after = int(round(before * (1 - rate / 100)))
        row.update({"crstk_ostk_cnt": f"{before - after:,}", "crstk_estk_cnt": "-",
                    "bfcr_cpt": f"{before * 500:,}", "atcr_cpt": f"{after * 500:,}",
                    "bfcr_tisstk_ostk": f"{before:,}", "atcr_tisstk_ostk": f"{after:,}", "bfcr_tisstk_estk": "-",
                    "atcr_tisstk_estk": "-", "cr_rt_ostk": f"{rate}", "cr_rt_estk": "-",
                    "cr_std": _korean_date(dates["record"]), "cr_mth": "무상감자(주식병합)", "cr_rs": "재무구조 개선",
                    "crsc_trspprpd_bgd": "-", "crsc_trspprpd_edd": "-",
                    "crsc_nstklstprd": _korean_date(dates["listing"]), "cdobprpd_bgd": "-", "cdobprpd_edd": "-",
                    "ftc_stt_atn": "-"})
    return row


def _yyyymmdd(text: str | None) -> dt.date | None:
    if text is None:
        return None
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"dates are YYYYMMDD, got {text!r}")
    return dt.datetime.strptime(text, "%Y%m%d").date()


@lru_cache(maxsize=512)
def _day_filings(fake: FakeDart, day: dt.date) -> tuple[dict, ...]:
    if day.weekday() >= 5:
        return ()
    import numpy as np

    from krxflow.sample.sessions import sessions

    rng = random.Random(zlib.crc32(f"krxflow-dart:{day.isoformat()}".encode()))
    index = int(sessions().searchsorted(np.datetime64(day, "D"), side="right")) - 1  # the last session on or before
    companies = fake.companies()
    listed = [c for i, c in enumerate(companies[:fake.market.count])
              if _listed_on(fake.market, fake.market.tickers[i], index)]
    season = _seasonal(day)
    rows = []
    for company in listed:
        if season is not None and _filer_day(company["corp_code"], season[1], season[2]) == day:
            rows.append((company, season[0], company["corp_name"], rng.choice(("연", "연", "", "정연"))))
        for _ in range(_poisson(rng, fake.filings_per_company)):
            name, _, filer, rm = rng.choices(_EVENT_REPORTS, weights=[e[1] for e in _EVENT_REPORTS])[0]
            flr = rng.choice(_HOLDERS) if filer == "holder" else company["corp_name"]
            rows.append((company, name, flr, rm[company["corp_cls"]]))
    for company in companies[fake.market.count:]:
        if rng.random() < 0.02:
            rows.append((company, rng.choice(("감사보고서 (2025.12)", "증권신고서(채무증권)", "투자설명서")),
                         company["corp_name"], ""))
    rng.shuffle(rows)
    out = []
    for seq, (company, name, flr, rm) in enumerate(rows):
        out.append({"corp_code": company["corp_code"], "corp_name": company["corp_name"],
                    "stock_code": company["stock_code"] if company["corp_cls"] != "E" else "",
                    "corp_cls": company["corp_cls"], "report_nm": name,
                    "rcept_no": f"{day:%Y%m%d}{(800000 if rm == '유' else 0) + 1 + seq:06d}",
                    "flr_nm": flr, "rcept_dt": f"{day:%Y%m%d}", "rm": rm})
    out.sort(key=lambda r: r["rcept_no"], reverse=True)
    return tuple(out)


def _listed_on(market, ticker: str, index: int) -> bool:
    p = market.profile(ticker)
    return index >= p.listed and (p.delisted is None or index < p.delisted)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth) — small means only."""
    import math

    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


# ---------------------------------------------------------------------------------------------- serving
def make_app(fake: FakeDart) -> web.Application:
    def refuse_json(status: str, message: str | None = None) -> web.Response:
        fake.statuses[status] += 1
        return web.json_response({"status": status, "message": message or MESSAGES[status]})

    def json_handler(api: str, answer):
        """One JSON service: the fault hook, the key and daily count, then ``answer(query)``."""
        async def handle(request: web.Request) -> web.Response:
            if fake.arrive(api, request.query):
                return web.Response(status=500, text="Internal Server Error")
            refused = fake.count(request.query.get("crtfc_key", ""))
            if refused:
                return refuse_json(refused)
            body = answer(request.query)
            fake.statuses[body["status"]] += 1
            return web.json_response(body)
        return handle

    async def corp_code(request: web.Request) -> web.Response:
        if fake.arrive("corpCode", request.query):
            return web.Response(status=500, text="Internal Server Error")
        refused = fake.count(request.query.get("crtfc_key", ""))
        if refused:
            fake.statuses[refused] += 1
            body = (f'<?xml version="1.0" encoding="UTF-8"?><result><status>{refused}</status>'
                    f"<message>{MESSAGES[refused]}</message></result>")
            return web.Response(body=body.encode("utf-8"), content_type="application/xml")
        fake.statuses["000"] += 1
        data = await asyncio.get_running_loop().run_in_executor(None, fake.corp_code_zip)
        return web.Response(body=data, content_type="application/x-msdownload",
                            headers={"Content-Disposition": "attachment; filename=CORPCODE.zip"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": dict(fake.requests), "statuses": dict(fake.statuses),
                                  "daily": {f"{k}:{d}": n for (k, d), n in fake.daily.items()}})

    app = web.Application()
    app.router.add_get("/api/list.json", json_handler("list", fake.search))
    app.router.add_get("/api/corpCode.xml", corp_code)
    app.router.add_get("/api/fnlttMultiAcnt.json", json_handler("fnlttMultiAcnt", fake.multi_accounts))
    for api in EVENT_APIS:
        app.router.add_get(f"/api/{api}.json", json_handler(api, lambda query, api=api: fake.event(api, query)))
    app.router.add_get("/_fake/stats", stats)
    return app


async def serve(fake: FakeDart, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start ``fake`` on ``host:port`` in the running loop; returns the runner and the base URL."""
    return await serve_app(make_app(fake), host, port)


class FakeDartThread(FakeAppThread):
    """Serve a :class:`FakeDart` from a background thread (tests, the sample mode)::

        with FakeDartThread(FakeDart(50)) as server:
            server.url, server.fake.requests
    """

    thread_name = "fake-dart"
    fake_class = FakeDart

    def app(self) -> web.Application:
        return make_app(self.fake)

    def connection_json(self, key: str = DEMO_KEY) -> str:
        return connection_json(self.url, key)


def connection_json(url: str, key: str = DEMO_KEY) -> str:
    """The ``dart_default`` Connection for a fake server at ``url`` (JSON form of AIRFLOW_CONN_*)."""
    return json.dumps({"conn_type": "http", "host": url, "password": key})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--companies", type=int, default=None)
    parser.add_argument("--daily-limit", type=int, default=DAILY_LIMIT)
    args = parser.parse_args(argv)
    fake = FakeDart(args.companies, daily_limit=args.daily_limit)
    web.run_app(make_app(fake), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
