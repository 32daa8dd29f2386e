"""Row validation and conversion for the batched writer, vectorised with pandas.

Every incoming column is converted to what its PostgreSQL column holds. A row that cannot be
written as given is *rejected*: counted, reported with a reason and a sample, and left out of
the write, so one bad row never costs the other 999. What counts as bad:

* a key column or NOT NULL column that is empty (None, NaN);
* text where a number belongs, including KRX's ``"-"`` placeholder; thousands separators
  (``"1,234"``) are accepted, as KRX sends them;
* NaN or ±infinity in a numeric column; a fraction in an integer column;
* a value outside the column's type (``integer`` overflow, ``numeric(p, s)`` precision);
* a value outside a ``CHECK (col >= n)`` / ``CHECK (col <= n)`` bound (negative prices and
  volumes, an RSI above 100);
* a partition-key date outside ``[earliest, today + 400 days]`` of the table's partition
  policy (a mistyped year would otherwise create partitions for it);
* an unparseable date or timestamp. Naive timestamps are taken as KST.

Empty values in nullable columns are written as NULL.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pyarrow as pa

from krxflow.hooks.table_spec import ColumnSpec, TableSpec
from krxflow.settings import MARKET_TZ
from krxflow.market_time import kst_today

#: How far ahead of today a partition-key date may lie.
FUTURE_HORIZON = dt.timedelta(days=400)

_TRUE = {"true", "t", "y", "yes", "1"}
_FALSE = {"false", "f", "n", "no", "0"}


@dataclass
class Validated:
    """The writable rows of one batch as an Arrow table, and the rejected ones with reasons."""

    table: pa.Table
    rejected: pd.DataFrame  # the rejected input rows plus a "reason" column


class _Checker:
    """Collects the first failure reason of every row of one batch."""

    def __init__(self, index: pd.Index):
        self.reasons = pd.Series(None, index=index, dtype=object)
        self._failed = np.zeros(len(index), dtype=bool)

    def fail(self, bad, reason: str) -> None:
        """Give ``reason`` to the rows flagged in ``bad`` (a boolean Series on the batch's index, NA
        counting as not bad, or an array in the batch's row order) that have none yet."""
        if isinstance(bad, pd.Series):
            bad = bad.to_numpy(dtype=bool, na_value=False)
        new = np.asarray(bad, dtype=bool) & ~self._failed
        if new.any():  # the usual batch fails nothing: no Series work then
            self.reasons[new] = reason
            self._failed |= new

    @property
    def ok(self) -> np.ndarray:
        """The rows with no failure, in the batch's row order."""
        return ~self._failed


def _sample_text(values: pd.Series, bad: pd.Series) -> str:
    first = values[bad.fillna(False).astype(bool)].head(1)
    if not len(first):
        return ""
    value = first.iloc[0]
    return repr(value) if isinstance(value, str) else str(value)


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


# Sentinels for values that cannot be converted; each maps to a reason.
_NOT_A_NUMBER, _NOT_FINITE, _FRACTION = object(), object(), object()


def _parse_decimal(value):
    """An exact Decimal from a Python/numpy number or number text ("1,234" allowed), or a sentinel."""
    if isinstance(value, (bool, np.bool_)):
        return Decimal(int(value))
    if isinstance(value, (int, np.integer)):
        return Decimal(int(value))
    if isinstance(value, (float, np.floating)):
        return Decimal(repr(float(value))) if math.isfinite(value) else _NOT_FINITE
    if isinstance(value, Decimal):
        return value if value.is_finite() else _NOT_FINITE
    if isinstance(value, str):
        try:
            parsed = Decimal(value.replace(",", "").strip())
        except InvalidOperation:
            return _NOT_A_NUMBER
        return parsed if parsed.is_finite() else _NOT_FINITE
    return _NOT_A_NUMBER


def _parse_objects(series: pd.Series, col: ColumnSpec, check: _Checker, parse) -> pd.Series:
    """Apply ``parse`` to every present value; flag the sentinels it returns."""
    parsed = [None if _is_missing(v) else parse(v) for v in series]
    for sentinel, why in ((_NOT_A_NUMBER, "not a number"), (_NOT_FINITE, "not finite"),
                          (_FRACTION, "not a whole number")):
        bad = pd.Series([v is sentinel for v in parsed], index=series.index, dtype=bool)
        check.fail(bad, f"{col.name}: {why} ({_sample_text(series, bad)})")
    # dtype=object keeps Python ints exact and None as None (pandas would turn them into float NaN)
    return pd.Series([v if isinstance(v, (int, Decimal)) else None for v in parsed], index=series.index,
                     dtype=object)


def _bounds(col: ColumnSpec) -> list[tuple]:
    """(outside, reason) per CHECK bound of ``col``: ``outside`` flags a scalar or a Series of values."""
    bounds = []
    if col.lower_bound is not None:
        low, inclusive = col.lower_bound, col.lower_inclusive
        bounds.append(((lambda v: v < low) if inclusive else (lambda v: v <= low),
                       f"{col.name}: must be {'>=' if inclusive else '>'} {low}"))
    if col.upper_bound is not None:
        high, inclusive = col.upper_bound, col.upper_inclusive
        bounds.append(((lambda v: v > high) if inclusive else (lambda v: v >= high),
                       f"{col.name}: must be {'<=' if inclusive else '<'} {high}"))
    return bounds


def _check_bounds(numbers: pd.Series | np.ndarray, col: ColumnSpec, check: _Checker) -> None:
    for outside, reason in _bounds(col):
        check.fail(outside(numbers), reason)


def _convert_integer(series: pd.Series, col: ColumnSpec, check: _Checker) -> pd.Series:
    low, high = col.integer_range
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("Int64")
    if pd.api.types.is_integer_dtype(series):
        values = series.astype("Int64")
    elif pd.api.types.is_float_dtype(series):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        finite = np.isfinite(numbers)
        check.fail(pd.Series(~finite & ~np.isnan(numbers), index=series.index), f"{col.name}: not finite")
        fraction = pd.Series(finite & (numbers != np.floor(numbers)), index=series.index)
        check.fail(fraction, f"{col.name}: not a whole number ({_sample_text(series, fraction)})")
        huge = pd.Series(finite & ((numbers < low) | (numbers > high)), index=series.index)
        check.fail(huge, f"{col.name}: out of range for {col.pg_type} ({_sample_text(series, huge)})")
        usable = finite & ~fraction.to_numpy() & ~huge.to_numpy()
        values = pd.Series(pd.array(np.where(usable, numbers, 0).astype("int64"), dtype="Int64"),
                           index=series.index).where(usable, pd.NA)
    else:
        def parse(value):
            number = _parse_decimal(value)
            if not isinstance(number, Decimal):
                return number
            return int(number) if number == number.to_integral_value() else _FRACTION

        exact = _parse_objects(series, col, check, parse)
        huge = pd.Series([v is not None and not low <= v <= high for v in exact], index=series.index, dtype=bool)
        check.fail(huge, f"{col.name}: out of range for {col.pg_type} ({_sample_text(series, huge)})")
        values = pd.Series(pd.array([None if h else v for v, h in zip(exact, huge)], dtype="Int64"),
                           index=series.index)
    check.fail((values < low) | (values > high), f"{col.name}: out of range for {col.pg_type}")
    _check_bounds(values, col, check)
    return values


def _convert_numeric(series: pd.Series, col: ColumnSpec, check: _Checker) -> pd.Series | pa.Array:
    """Numbers for PostgreSQL: floats stay floats (numeric columns too: the text COPY prints their
    shortest repr, the binary COPY scales them to the same exact decimal), Decimals and text become
    exact text."""
    limit = None
    if col.numeric_precision is not None and col.pg_type.startswith("numeric"):
        limit = 10 ** (col.numeric_precision - (col.numeric_scale or 0))
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("Int64")
    if pd.api.types.is_numeric_dtype(series):  # numpy throughout: most of a batch of doubles' time otherwise
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        check.fail(np.isinf(numbers), f"{col.name}: not finite")
        if limit is not None:
            over = np.abs(numbers) >= limit
            if over.any():
                check.fail(over, f"{col.name}: does not fit {col.pg_type} "
                                 f"({_sample_text(series, pd.Series(over, index=series.index))})")
        _check_bounds(numbers, col, check)
        # kept binary: the CSV writer prints the shortest repr (1.1 stays "1.1", exact for numeric)
        return pa.array(np.where(np.isfinite(numbers), numbers, np.nan), from_pandas=True, type=pa.float64())
    exact = _parse_objects(series, col, check, _parse_decimal)
    if limit is not None:
        over = pd.Series([v is not None and abs(v) >= limit for v in exact], index=series.index, dtype=bool)
        check.fail(over, f"{col.name}: does not fit {col.pg_type} ({_sample_text(series, over)})")
    for outside, reason in _bounds(col):
        check.fail(pd.Series([v is not None and outside(v) for v in exact], index=series.index, dtype=bool), reason)
    return pd.Series([None if v is None else str(v) for v in exact], index=series.index, dtype=object)


def _parse_datetimes(series: pd.Series) -> pd.Series:
    """Timestamps from dates, datetimes and text (2024-01-02, 2024/01/02, 20240102, ISO 8601).

    Naive values are KST; the result is tz-aware (KST) with NaT where a value did not parse.
    """
    def parse(value):
        if _is_missing(value):
            return pd.NaT
        if isinstance(value, str):
            text = value.strip().replace("/", "-")
            if len(text) == 8 and text.isdigit():
                text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
            value = text
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            return pd.NaT
        if stamp is pd.NaT:
            return pd.NaT
        return stamp.tz_localize(MARKET_TZ) if stamp.tzinfo is None else stamp.tz_convert(MARKET_TZ)

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert(MARKET_TZ)
    if pd.api.types.is_datetime64_dtype(series):
        return series.dt.tz_localize(MARKET_TZ)
    parsed = [parse(v) for v in series]
    return pd.Series(pd.DatetimeIndex(parsed, tz=MARKET_TZ) if parsed else pd.DatetimeIndex([], tz=MARKET_TZ),
                     index=series.index)


def _kst_days(series: pd.Series) -> pd.Series:
    """KST calendar days as naive midnight timestamps (NaT where a value did not parse).

    Naive datetimes already are KST wall times: they are only normalised, with no round trip
    through a time zone (which costs a time-zone database lookup per process).
    """
    if pd.api.types.is_datetime64_dtype(series):  # naive only: tz-aware series have DatetimeTZDtype
        return series.dt.normalize()
    return _parse_datetimes(series).dt.tz_localize(None).dt.normalize()


def _convert_date(series: pd.Series, col: ColumnSpec, check: _Checker, spec: TableSpec) -> pd.Series:
    days = _kst_days(series)
    unparsed = series.notna() & days.isna()
    check.fail(unparsed, f"{col.name}: not a date ({_sample_text(series, unparsed)})")
    _check_partition_range(days, col, check, spec)
    return days


def _convert_timestamp(series: pd.Series, col: ColumnSpec, check: _Checker, spec: TableSpec) -> pd.Series:
    parsed = _parse_datetimes(series)
    unparsed = series.notna() & parsed.isna()
    check.fail(unparsed, f"{col.name}: not a timestamp ({_sample_text(series, unparsed)})")
    _check_partition_range(parsed.dt.tz_localize(None).dt.normalize(), col, check, spec)
    return parsed.dt.tz_convert("UTC")


def _partition_window(policy) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The days a partition key may hold: the policy's ``earliest`` to today + ``FUTURE_HORIZON``."""
    return pd.Timestamp(policy.earliest), pd.Timestamp(kst_today() + FUTURE_HORIZON)


def _check_partition_range(days: pd.Series, col: ColumnSpec, check: _Checker, spec: TableSpec) -> None:
    policy = spec.policy
    if policy is None or policy.key_column != col.name:
        return
    earliest, latest = _partition_window(policy)
    outside = days.notna() & ((days < earliest) | (days > latest))
    check.fail(outside, f"{col.name}: outside the partitioned range {earliest.date()} .. {latest.date()}")


def _convert_boolean(series: pd.Series, col: ColumnSpec, check: _Checker) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")

    def parse(value):
        if _is_missing(value):
            return None
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else "bad"

    parsed = series.map(parse)
    bad = parsed.eq("bad")
    check.fail(bad, f"{col.name}: not a boolean ({_sample_text(series, bad)})")
    return parsed.where(~bad, None).astype("boolean")


def _convert_json(series: pd.Series, col: ColumnSpec, check: _Checker) -> pd.Series:
    def dump(value):
        if _is_missing(value):
            return None
        if isinstance(value, (bytes, bytearray)):
            value = value.decode("utf-8")
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                return "\x00bad"
            return value
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
        except ValueError:
            return "\x00bad"

    dumped = series.map(dump)
    bad = dumped.eq("\x00bad")
    check.fail(bad, f"{col.name}: not valid JSON")
    return dumped.where(~bad, None)


def _convert_text(series: pd.Series, col: ColumnSpec, check: _Checker) -> pa.Array:
    try:  # the common case, all str (or missing): converted in C
        return pa.array(series, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array(series.map(lambda v: None if _is_missing(v) else str(v)), type=pa.string(), from_pandas=True)


def _to_arrow(values: pd.Series | pa.Array, col: ColumnSpec) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    kind = col.kind
    if kind == "integer":
        return pa.Array.from_pandas(values, type=pa.int64())
    if kind == "date":
        return pa.Array.from_pandas(values).cast(pa.date32())
    if kind == "timestamp":
        return pa.Array.from_pandas(values).cast(pa.timestamp("us", tz="UTC"))
    if kind == "boolean":
        return pa.Array.from_pandas(values, type=pa.bool_())
    return pa.Array.from_pandas(values, type=pa.string())


def validate(frame: pd.DataFrame, spec: TableSpec, columns: list[str], key: list[str]) -> Validated:
    """Convert ``frame[columns]`` to ``spec``'s types; split it into writable and rejected rows."""
    check = _Checker(frame.index)
    converted = {}
    for name in columns:
        col = spec.columns[name]
        series = frame[name]
        kind = col.kind
        if kind == "integer":
            values = _convert_integer(series, col, check)
        elif kind == "numeric":
            values = _convert_numeric(series, col, check)
        elif kind == "date":
            values = _convert_date(series, col, check, spec)
        elif kind == "timestamp":
            values = _convert_timestamp(series, col, check, spec)
        elif kind == "boolean":
            values = _convert_boolean(series, col, check)
        elif kind == "json":
            values = _convert_json(series, col, check)
        else:
            values = _convert_text(series, col, check)
        if name in key or col.not_null:
            missing = values.is_null().to_numpy(zero_copy_only=False) if isinstance(values, pa.Array) \
                else values.isna().to_numpy()
            check.fail(missing & check.ok,
                       f"{name}: empty, but the column requires a value")
        converted[name] = values

    ok = check.ok
    if ok.all():
        arrays = [_to_arrow(converted[n], spec.columns[n]) for n in columns]
        rejected = frame.iloc[0:0][columns].assign(reason=pd.Series(dtype=object))
    else:
        mask = pa.array(ok)
        arrays = [_to_arrow(converted[n], spec.columns[n]).filter(mask) for n in columns]
        rejected = frame.loc[~ok, columns].assign(reason=check.reasons[~ok])
    return Validated(pa.Table.from_arrays(arrays, names=columns), rejected)


def writable_key_range(values: pd.Series, col: ColumnSpec, policy) -> tuple | None:
    """(low, high) of a partition-key column over the values validation will accept, or None.

    Read before any row is written, so the partitions exist and the fast path can be chosen.
    Dates come back as ``datetime.date``, timestamps as tz-aware datetimes; values that will be
    rejected (unparseable, outside ``[earliest, today + 400 days]``) do not widen the range.
    """
    if col.kind == "date":
        parsed = days = _kst_days(values)
    else:
        parsed = _parse_datetimes(values)
        days = parsed.dt.tz_localize(None).dt.normalize()
    earliest, latest = _partition_window(policy)
    usable = days.notna() & (days >= earliest) & (days <= latest)
    if not usable.any():
        return None
    if col.kind == "date":
        return days[usable].min().date(), days[usable].max().date()
    return parsed[usable].min().to_pydatetime(), parsed[usable].max().to_pydatetime()
