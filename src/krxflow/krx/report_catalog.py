"""The other daily KRX reports krxflow keeps (issue 17): the one list, light enough for DAG files.

:data:`REPORTS` names each report (the ``reports`` Param of ``krx_market_reports``), the
:class:`~krxflow.krx.interface.KrxSource` method that fetches it, its table, the KRX requests it
costs per session, and its lag (KRX publishes short balances two sessions late). The DAG, the
loaders and the bench read it (docs/market-reports.md tabulates it). No pandas here: DAG files import it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from krxflow.krx.interface import INVESTOR_TYPES


@dataclass(frozen=True)
class Report:
    """One daily KRX report krxflow keeps."""

    name: str
    method: str  # the KrxSource method
    table: str
    bld: str  # what KRX is asked (for the README and logs)
    requests: int  # KRX requests per session
    lag: int = 0  # sessions between the run's session and the day asked for
    all_markets: bool = False  # asked with mktId=ALL: KRX's answer holds KONEX tickers too (left out)

    def day_for(self, session: dt.date) -> dt.date:
        """The day this report is asked for in the run of ``session``."""
        from krxflow.calendar import previous_trading_day

        day = session
        for _ in range(self.lag):
            day = previous_trading_day(day)
        return day


REPORTS: dict[str, Report] = {r.name: r for r in (
    Report("indices", "index_prices", "krx_index_prices", "finder_equidx + MDCSTAT00101 × 3 groups", 4),
    Report("investors", "investor_trading", "krx_investor_trading",
           f"MDCSTAT02401 × {len(INVESTOR_TYPES)} investor types", len(INVESTOR_TYPES), all_markets=True),
    Report("fundamentals", "fundamentals", "krx_fundamentals", "MDCSTAT03501", 1, all_markets=True),
    Report("short_selling", "short_selling", "krx_short_selling", "srt MDCSTAT30101 × 2 markets", 2),
    Report("short_balance", "short_balance", "krx_short_balance", "srt MDCSTAT30501 × 2 markets", 2, lag=2),
    Report("foreign_ownership", "foreign_ownership", "krx_foreign_ownership", "MDCSTAT03701", 1, all_markets=True),
)}
#: Every report, in the order the DAG runs them.
REPORT_NAMES = tuple(REPORTS)


def selected_reports(wanted) -> list[str]:
    """The reports a run loads: ``"all"``/None/empty = all, else names (a list or comma-separated)."""
    if wanted is None or (isinstance(wanted, str) and wanted.strip().lower() in ("", "all")):
        return list(REPORT_NAMES)
    names = [str(w).strip().lower() for w in (wanted.split(",") if isinstance(wanted, str) else wanted)]
    names = [n for n in names if n]
    if "all" in names:
        return list(REPORT_NAMES)
    unknown = sorted(set(names) - set(REPORTS))
    if unknown:
        raise ValueError(f"unknown reports {unknown}: choose from {list(REPORT_NAMES)} or 'all'")
    return [n for n in REPORT_NAMES if n in names]
