"""Expand the SQL of krxflow's Grafana panels the way Grafana does, so it can run outside Grafana.

Grafana turns a panel's ``rawSql`` into the statement PostgreSQL sees in two steps:

1. **Frontend template interpolation** (``templateSrv.replace`` with the SQL datasource's
   ``interpolateVariable``): ``$var``, ``${var}``, ``${var:raw}`` and ``[[var]]`` are replaced by the
   variable's value. A single value of a single-value variable is inserted as is, with ``'``
   doubled; a multi-value (or include-all) variable becomes a comma-separated list of quoted
   literals. Built-ins: ``$__interval``, ``$__interval_ms``, ``$__from``, ``$__to`` (epoch ms).
2. **Backend macro engine** (``pkg/tsdb/grafana-postgresql-datasource/macros.go``): every
   ``$__name(args)`` (arguments up to the first ``)``) is evaluated — ``$__time``,
   ``$__timeEpoch``, ``$__timeFilter`` (``col BETWEEN '<from>' AND '<to>'``, RFC 3339 UTC),
   ``$__timeFrom()``, ``$__timeTo()``, ``$__timeGroup(col, '5m')``
   (``floor(extract(epoch from col)/300)*300``; followed by a comma it becomes the alias form, as
   Grafana keeps for pre-5.3 dashboards), ``$__timeGroupAlias`` (``… AS "time"``) and the
   ``$__unixEpoch*`` family. An unknown macro is an error, as in Grafana.

The test suite checks this module against the expansions in Grafana's documentation and its own
macro tests, and the benchmark uses it to time every panel against a real database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Mapping, Sequence

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE_UID = "krxflow-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+)(?::(\w+))?\]\]|\$\{(\w+)(?::(\w+))?\}")
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_INTERVAL_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range, as instants (Grafana sends UTC to the backend)."""

    start: datetime
    end: datetime

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeRange needs timezone-aware datetimes")


def rfc3339nano(moment: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fractional seconds without trailing zeros, ``Z`` suffix."""
    utc = moment.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


def parse_interval(text: str) -> float:
    """Seconds of a Grafana interval such as ``5m``, ``1d`` or ``20ms`` (``gtime.ParseInterval``)."""
    match = _INTERVAL.match(text.strip().strip("'"))
    if not match:
        raise MacroError(f"error parsing interval {text}")
    return float(match[1]) * _INTERVAL_SECONDS[match[2]]


def _go_number(value: float) -> str:
    """Go's ``%v`` for a float64: integral values without a decimal point."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def interpolate_variables(sql: str, values: Mapping[str, str | Sequence[str]], *, multi: set[str] = frozenset(),
                          time_range: TimeRange | None = None, interval: str = "1m") -> str:
    """Step 1: replace template variables as Grafana's frontend does for a SQL datasource."""
    builtins: dict[str, str] = {"__interval": interval, "__interval_ms": _go_number(parse_interval(interval) * 1000)}
    if time_range is not None:
        builtins["__from"] = str(int(time_range.start.timestamp() * 1000))
        builtins["__to"] = str(int(time_range.end.timestamp() * 1000))

    def render(name: str, fmt: str | None) -> str | None:
        if name in builtins:
            return builtins[name]
        if name not in values:
            return None
        value = values[name]
        if fmt == "raw":
            return value if isinstance(value, str) else ",".join(value)
        if isinstance(value, str):
            return _quote_literal(value) if name in multi else value.replace("'", "''")
        return ",".join(_quote_literal(v) for v in value)

    def replace(match: re.Match) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[5]
        rendered = render(name, fmt)
        return match[0] if rendered is None else rendered

    return _VARIABLE.sub(replace, sql)


def expand_macros(sql: str, time_range: TimeRange) -> str:
    """Step 2: evaluate ``$__macro(args)`` as the PostgreSQL datasource's backend does."""
    start, end = time_range.start.astimezone(timezone.utc), time_range.end.astimezone(timezone.utc)
    errors: list[str] = []

    def evaluate(name: str, args: list[str]) -> str:
        if name == "__time":
            _need(name, args, 1)
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            _need(name, args, 1)
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            _need(name, args, 1)
            return f"{args[0]} BETWEEN '{rfc3339nano(start)}' AND '{rfc3339nano(end)}'"
        if name == "__timeFrom":
            return f"'{rfc3339nano(start)}'"
        if name == "__timeTo":
            return f"'{rfc3339nano(end)}'"
        if name == "__timeGroup":
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval and optional fill value")
            seconds = _go_number(parse_interval(args[1]))
            return f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
        if name == "__timeGroupAlias":
            return evaluate("__timeGroup", args) + ' AS "time"'
        if name == "__unixEpochFilter":
            _need(name, args, 1)
            return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
        if name == "__unixEpochNanoFilter":
            _need(name, args, 1)
            return f"{args[0]} >= {_nanos(start)} AND {args[0]} <= {_nanos(end)}"
        if name == "__unixEpochNanoFrom":
            return str(_nanos(start))
        if name == "__unixEpochNanoTo":
            return str(_nanos(end))
        if name == "__unixEpochGroup":
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval and optional fill value")
            seconds = _go_number(parse_interval(args[1]))
            return f"floor(({args[0]})/{seconds})*{seconds}"
        if name == "__unixEpochGroupAlias":
            return evaluate("__unixEpochGroup", args) + ' AS "time"'
        raise MacroError(f'unknown macro "{name}"')

    def replace(match: re.Match) -> str:
        name = match[1]
        if name == "__timeGroup":  # pre-5.3 dashboards: a comma right after the macro means "alias it"
            index = sql.find(match[0])
            if index >= 0 and sql[index + len(match[0]):index + len(match[0]) + 1] == ",":
                name = "__timeGroupAlias"
        args = [arg.strip(" ") for arg in match[2].split(",")]
        try:
            return evaluate(name, args)
        except MacroError as exc:
            errors.append(str(exc))
            return "macro_error()"

    expanded = _MACRO.sub(replace, sql)
    if errors:
        raise MacroError(errors[0])
    return expanded


def expand(sql: str, time_range: TimeRange, values: Mapping[str, str | Sequence[str]] | None = None, *,
           multi: set[str] = frozenset(), interval: str = "1m") -> str:
    """A panel's ``rawSql`` as PostgreSQL receives it from Grafana."""
    interpolated = interpolate_variables(sql, values or {}, multi=multi, time_range=time_range, interval=interval)
    return expand_macros(interpolated, time_range)


def _need(name: str, args: list[str], count: int) -> None:
    if len(args) < count or not args[0]:
        raise MacroError(f"missing time column argument for macro {name}")


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


_NICE_INTERVALS = ["1s", "2s", "5s", "10s", "15s", "20s", "30s", "1m", "2m", "5m", "10m", "15m", "20m", "30m",
                   "1h", "2h", "3h", "6h", "12h", "1d", "7d"]


def auto_interval(time_range: TimeRange, max_data_points: int = 1000, min_interval: str = "1m") -> str:
    """The ``$__interval`` Grafana would pick: range / max data points, rounded up to a round
    interval and never below the datasource's ``timeInterval`` (``1m`` in our provisioning).

    Grafana's ``roundInterval`` rounds to the nearest step of a similar table; rounding up is a
    slightly conservative (fewer, larger buckets would be cheaper) but close approximation.
    """
    raw = (time_range.end - time_range.start).total_seconds() / max_data_points
    floor = parse_interval(min_interval)
    for name in _NICE_INTERVALS:
        if parse_interval(name) >= max(raw, floor):
            return name
    return _NICE_INTERVALS[-1]


# ------------------------------------------------------------------------------------ dashboards
@dataclass
class Variable:
    name: str
    type: str
    multi: bool
    options: list[str] = field(default_factory=list)  # values of a custom variable
    query: str | None = None  # SQL of a query variable


@dataclass
class PanelQuery:
    dashboard_uid: str
    panel_id: int
    title: str
    panel_type: str
    ref_id: str
    format: str
    raw_sql: str
    datasource_uid: str | None

    @property
    def name(self) -> str:
        return f"{self.dashboard_uid}/{self.panel_id}-{self.ref_id}"


def load_dashboards(folder: Path = DASHBOARDS_DIR) -> dict[str, dict]:
    """file name -> parsed dashboard JSON."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def iter_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those nested in rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: dict) -> list[PanelQuery]:
    found = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            found.append(PanelQuery(
                dashboard_uid=dashboard["uid"], panel_id=panel["id"], title=panel.get("title", ""),
                panel_type=panel["type"], ref_id=target.get("refId", "A"), format=target.get("format", "table"),
                raw_sql=target.get("rawSql", ""), datasource_uid=(target.get("datasource") or {}).get("uid"),
            ))
    return found


def variables(dashboard: dict) -> dict[str, Variable]:
    found = {}
    for var in dashboard.get("templating", {}).get("list", []):
        options = [o["value"] for o in var.get("options", [])]
        query = var.get("query") if var["type"] == "query" else None
        if isinstance(query, dict):
            query = query.get("rawSql") or query.get("query")
        found[var["name"]] = Variable(var["name"], var["type"], bool(var.get("multi") or var.get("includeAll")),
                                      options, query)
    return found


def kst_range(first: str, last: str) -> TimeRange:
    """A dashboard time range from KST midnight of ``first`` to the end of ``last`` (ISO dates)."""
    kst = timezone(timedelta(hours=9))
    start = datetime.fromisoformat(first).replace(tzinfo=kst)
    end = datetime.fromisoformat(last).replace(tzinfo=kst) + timedelta(days=1) - timedelta(milliseconds=1)
    return TimeRange(start, end)
