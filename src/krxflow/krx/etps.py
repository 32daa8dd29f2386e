"""ETFs and ETNs (issue 27, point 4): one session of every listed product → ``krx_etp_prices`` and the
``krx_etps`` master, by date, as the stocks' daily prices are loaded.

:func:`load_etps` is one session (the ``krx_etf`` DAG, one run per session; a backfill is
``airflow backfill create`` over logical dates). Through the source's one gated KRX session:

* **Two requests a session**: KRX's all-ETF screen (MDCSTAT04301) and all-ETN screen (MDCSTAT06401).
  The base-info screens (MDCSTAT04601 / 06701: issuer, KRX listing date, multiplier; they have no
  date and describe today's products) are asked once per kind when a session lists a code whose
  information was never read — only for a session of the last week (or ``info=True``): an old
  session's new code is described by the first recent session that lists it.
* **All or nothing.** Every request is sent before anything is written; an empty answer, KRX's rows
  of ``"-"`` (a day it has not published), a changed answer (missing fields, another kind's rows, a
  fifth of the listed products gone at once) or a failure mid-way raises, and nothing of the
  session is written. The session's prices and master rows then go in one transaction, serialised
  with the other sessions' (a backfill loads several at once).
* **By date, idempotent, any order.** Prices are upserted by (code, trade_date). The master's
  ``first_seen``/``last_seen`` only widen, and ``delisted_on`` is recomputed for every product the
  session touches as the first loaded session after its ``last_seen`` — the same whatever order
  the sessions are loaded in; attributes (name, index) follow the newest session seen.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field

import pandas as pd

from krxflow.krx.errors import KrxBadAnswerError, KrxEmptyAnswerError
from krxflow.krx.interface import ETP_KINDS, ETP_PRICE_COLUMNS, KrxSource
from krxflow.krx.tables import for_hook, read_frame, shared_hook
from krxflow.market_time import kst_date, kst_today
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

MASTER_COLUMNS = ["code", "kind", "name", "isin", "underlying_index", "issuer", "multiplier", "listed_on",
                  "last_trading_on", "info_checked_on", "first_seen", "last_seen", "delisted", "delisted_on",
                  "updated_at"]
#: Base info is asked for sessions at most this many days before today (it describes today's products).
INFO_RECENT_DAYS = 7
#: More listed products than this share (and floor) of a kind missing from one answer is a changed
#: answer, not a wave of delistings (KRX delists a few dozen ETFs/ETNs a year).
MAX_GONE_SHARE = 0.2
MAX_GONE_FLOOR = 20


@dataclass
class EtpResult:
    """What one session's load asked and wrote."""

    session: str
    requests: int = 0
    day_requests: int = 0
    info_requests: int = 0
    rows: dict = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    new_products: int = 0
    delisted: int = 0
    info_kinds: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None


def load_etps(source: KrxSource, session, *, hook=None, info: bool | None = None) -> dict:
    """Every ETF and ETN of session ``session`` → ``krx_etp_prices`` and ``krx_etps`` (see the module doc).

    ``info``: ask the base-info screens for kinds with a code never described (None: only when the
    session is within :data:`INFO_RECENT_DAYS` of today; False: never). Returns :class:`EtpResult`
    as a dict. A holiday sends nothing and writes nothing.
    """
    from krxflow.calendar import is_trading_day

    hook = hook or shared_hook()
    session = kst_date(session)
    result = EtpResult(session=session.isoformat())
    if not is_trading_day(session):
        result.skipped = "not an XKRX session"
        return asdict(result)
    started, sent_before = time.perf_counter(), source.requests_sent()

    # 1. every request first: nothing is written unless all of them succeed
    answers = {kind: source.etp_day(kind, session) for kind in ETP_KINDS}
    result.day_requests = source.requests_sent() - sent_before
    for kind, frame in answers.items():
        if frame.empty:
            raise KrxEmptyAnswerError(f"KRX answered no {kind} prices for {session}, an XKRX trading day: not "
                                      "published yet, or a site change. Nothing written.")
        if set(frame["kind"]) != {kind}:
            raise KrxBadAnswerError(f"KRX's {kind} answer of {session} holds rows of {sorted(set(frame['kind']))}")
        result.rows[kind] = len(frame)
    day = pd.concat(answers.values(), ignore_index=True)
    twice = day["code"][day["code"].duplicated()]
    if len(twice):
        raise KrxBadAnswerError(f"KRX lists {sorted(set(twice))[:5]} as both an ETF and an ETN on {session}")
    master = read_frame(hook, "queries/etf/master_state.sql")
    _check_gone(master, day, session)
    described = set(master.loc[master["info_checked_on"].notna(), "code"])
    wanted = info if info is not None else session >= kst_today() - dt.timedelta(days=INFO_RECENT_DAYS)
    infos = {}
    if wanted:
        for kind in ETP_KINDS:
            codes = set(answers[kind]["code"])
            if codes - described:
                infos[kind] = source.etp_info(kind)
    result.info_kinds = list(infos)
    result.requests = source.requests_sent() - sent_before
    result.info_requests = result.requests - result.day_requests

    # 2. one transaction, one session at a time
    with hook.thread_connection() as conn, conn.transaction():
        conn.execute(template("queries/etf/session_lock.sql"))
        written = hook.upsert("krx_etp_prices", for_hook(day[ETP_PRICE_COLUMNS]))
        result.inserted, result.updated = written.inserted, written.updated
        result.unchanged, result.rejected = written.unchanged, written.rejected
        master = read_frame(hook, "queries/etf/master_state.sql")  # under the lock: the latest
        rows = _master_rows(hook, master, day, session, infos, result)
        if rows:
            hook.upsert("krx_etps", _for_hook(pd.DataFrame(rows, columns=MASTER_COLUMNS)), columns=MASTER_COLUMNS)
    result.seconds = round(time.perf_counter() - started, 3)
    log.info("ETFs/ETNs of %s: %s", session, result)
    return asdict(result)


def _check_gone(master: pd.DataFrame, day: pd.DataFrame, session: dt.date) -> None:
    """A fifth of a kind's listed products missing at once is a changed answer, not delistings."""
    for kind in ETP_KINDS:
        listed = master[(master["kind"] == kind) & ~master["delisted"] & master["last_seen"].notna()]
        listed = listed[listed["last_seen"] < session]
        gone = set(listed["code"]) - set(day["code"])
        known = int(((master["kind"] == kind) & ~master["delisted"]).sum())
        if len(gone) > max(MAX_GONE_FLOOR, MAX_GONE_SHARE * known):
            raise KrxBadAnswerError(f"KRX's {kind} answer of {session} lacks {len(gone)} of the {known} products "
                                    "listed before: a changed answer, not delistings. Nothing written.")


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def _clean(row: dict) -> dict:
    return {k: (None if _missing(v) else v) for k, v in row.items()}


def _master_rows(hook, master: pd.DataFrame, day: pd.DataFrame, session: dt.date, infos: dict,
                 result: EtpResult) -> list[dict]:
    """The master rows the session changes: its products (dates widened, newest attributes, base
    info), and every product whose ``delisted_on`` can have moved (recomputed from the loaded sessions)."""
    now = pd.Timestamp.now(tz="UTC")
    old = {r["code"]: _clean(r) for r in master.to_dict("records")}
    info = {}
    for kind, frame in infos.items():
        info.update({r["code"]: _clean(r) for r in frame.to_dict("records")})
    rows: dict[str, dict] = {}
    for rec in day.to_dict("records"):
        rec = _clean(rec)
        code, before = rec["code"], old.get(rec["code"])
        if before is None:
            result.new_products += 1
            row = {c: None for c in MASTER_COLUMNS} | {"code": code, "delisted": False}
        else:
            row = dict(before)
        newest = row["last_seen"] is None or session >= row["last_seen"]
        if newest:
            row.update(kind=rec["kind"], name=rec["name"], underlying_index=rec["underlying_index"] or row["underlying_index"],
                       isin=rec["isin"] or row["isin"])
        row["first_seen"] = min(row["first_seen"] or session, session)
        row["last_seen"] = max(row["last_seen"] or session, session)
        rows[code] = row
    for code, before in old.items():  # listed before, absent now: maybe delisted on this session
        if code in rows or before["last_seen"] is None or before["last_seen"] >= session:
            continue
        if before["delisted"] and before["delisted_on"] is not None and before["delisted_on"] <= session:
            continue  # already gone on or before this session
        rows[code] = dict(before)
    for code, described in info.items():  # today's products: issuer, listing date, multiplier
        row = rows.get(code) or (dict(old[code]) if code in old else None)
        if row is None:
            continue
        row.update({k: described[k] for k in ("issuer", "multiplier", "listed_on", "last_trading_on")
                    if described[k] is not None})
        row["isin"] = row["isin"] or described["isin"]
        row["underlying_index"] = row["underlying_index"] or described["underlying_index"]
        rows[code] = row
    for kind in infos:  # asked once per code: a code KRX's base info lacks is not asked again
        for code in set(day.loc[day["kind"] == kind, "code"]):
            rows[code]["info_checked_on"] = max(rows[code]["info_checked_on"] or session, session)
    gone_on = _first_sessions_after(hook, {r["last_seen"] for r in rows.values()})
    out = []
    for code, row in rows.items():
        row["delisted_on"] = gone_on.get(row["last_seen"])
        was = old.get(code)
        if row["delisted_on"] is not None and (was is None or not was["delisted"]):
            result.delisted += 1
        row["delisted"] = row["delisted_on"] is not None
        same = was is not None and all(_same(was[c], row[c]) for c in MASTER_COLUMNS if c != "updated_at")
        if same:
            continue
        row["updated_at"] = now
        out.append(row)
    return out


def _first_sessions_after(hook, days: set) -> dict:
    days = sorted(d for d in days if d is not None)
    if not days:
        return {}
    found = read_frame(hook, "queries/etf/first_session_after.sql", {"afters": days})
    return {a: (None if _missing(d) else d) for a, d in zip(found["after"], found["day"])}


def _same(a, b) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) < 1e-9
    return a == b


def _for_hook(frame: pd.DataFrame) -> pd.DataFrame:
    """The master's dates as datetime64 (the writer's vectorised path)."""
    days = {c: pd.to_datetime(frame[c]) for c in ("listed_on", "last_trading_on", "info_checked_on", "first_seen",
                                                  "last_seen", "delisted_on")}
    return frame.assign(**days, updated_at=pd.to_datetime(frame["updated_at"], utc=True),
                        multiplier=pd.to_numeric(frame["multiplier"], errors="coerce"))


def check_etps(session, *, hook=None) -> dict:
    """Quality figures of session ``session`` of ``krx_etp_prices`` → one journal row (operation
    ``quality_check``; status ``warning`` when something is off)."""
    from krxflow.journal import Journal, Operation

    hook = hook or shared_hook()
    day = kst_date(session)
    with Journal(hook).operation("krx_etp_prices", Operation.QUALITY_CHECK, day=day.isoformat()) as entry:
        figures = {k: int(v) for k, v in read_frame(hook, "queries/etf/quality.sql", {"day": day}).iloc[0].items()}
        problems = [message.format(figures[key]) for key, message in (
            ("bad_ohlc", "{} rows break low <= open/close <= high"), ("without_nav", "{} products without a NAV/IV"),
            ("without_index", "{} products without an index close"),
            ("far_from_nav", "{} products trading more than 5 % away from their NAV")) if figures[key]]
        for kind, key in (("ETF", "etfs"), ("ETN", "etns")):
            if not figures[key]:
                problems.append(f"no {kind} rows")
        entry.rows_in, entry.rejected = figures["rows"], figures["bad_ohlc"]
        entry.details.update(figures)
        entry.warn(problems)
    log.log(logging.WARNING if problems else logging.INFO, "quality of ETFs/ETNs on %s: %s %s", day, entry.status, figures)
    return {"day": day.isoformat(), "status": str(entry.status), "problems": problems, **figures}
