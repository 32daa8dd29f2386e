"""The writer's binary COPY stores exactly what PostgreSQL's own text input would store.

Each case writes the same values twice into twin tables: through ``BatchedPostgresHook`` (binary
COPY, :mod:`krxflow.hooks.binary_copy`) and through plain ``INSERT``s of the values as text
literals, which the server parses itself (``numeric_in`` + the column's typmod, ``float8in``, ...).
The two tables must hold the same values, compared as the server prints them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

COLUMNS = ["ticker", "trade_date", "price", "rate", "ratio", "volume", "small", "flag", "at", "note"]
_DDL = """
CREATE TABLE {name} (
    ticker     text NOT NULL,
    trade_date date NOT NULL,
    price      numeric(18, 4),
    rate       numeric(10, 2),
    ratio      double precision,
    volume     bigint,
    small      smallint,
    flag       boolean,
    at         timestamp with time zone,
    note       text,
    PRIMARY KEY (ticker, trade_date)
)"""


@pytest.fixture
def twins(clean_db):
    pg = clean_db
    for name in ("binary_probe", "text_probe"):
        pg.execute(f"DROP TABLE IF EXISTS {name}")
        pg.execute(_DDL.format(name=name))
    yield pg
    for name in ("binary_probe", "text_probe"):
        pg.execute(f"DROP TABLE IF EXISTS {name}")


def _frame(n: int = 400) -> pd.DataFrame:
    from krxflow.settings import MARKET_TZ

    rng = np.random.default_rng(7)
    # halves and near-halves at the 4th / 2nd decimal, tiny and large magnitudes, exponents in repr
    prices = [1.00005, 2.00015, 0.00005, 0.00004999, 1e-07, 123456789.12345, 99999999999999.99, 0.0, 9070.5,
              2650000.0, 1.5e-05, 3.14159265358979, 12.34565, 0.1 + 0.2]
    rates = [1.005, -1.005, 2.675, -0.005, 0.005, 29.995, -29.995, 0.0, -0.0, 1e-3]
    rows = []
    for i in range(n):
        rows.append({
            "ticker": f"{i % 37:06d}" if i % 5 else f"T{i:05d}X",  # two text lengths
            "trade_date": dt.date(2024, 1, 2) + dt.timedelta(days=i // 37),
            "price": prices[i % len(prices)] if i % 11 else float(rng.normal(5e4, 3e4)),
            "rate": rates[i % len(rates)] if i % 13 else None,
            "ratio": float(rng.normal()) * 10.0 ** int(rng.integers(-300, 300)) if i % 7 else None,
            "volume": int(rng.integers(0, 2**62)) if i % 3 else None,
            "small": int(rng.integers(-32768, 32767)),
            "flag": bool(i % 2) if i % 9 else None,
            "at": pd.Timestamp("2024-03-01 09:00:00.123456", tz=MARKET_TZ) + pd.Timedelta(seconds=i) if i % 4 else None,
            "note": ["", "삼성전자", "a,b\n\"c\"", None, "\\N"][i % 5],
        })
    frame = pd.DataFrame(rows).drop_duplicates(["ticker", "trade_date"], keep="last")
    return frame.astype({"volume": "Int64", "small": "Int64", "flag": "boolean"})


def _as_text(value) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _contents(pg, name: str) -> list[tuple]:
    cast = ", ".join(f"{c}::text" for c in COLUMNS)
    return pg.execute(f"SELECT {cast} FROM {name} ORDER BY ticker, trade_date").fetchall()


def test_binary_copy_stores_what_text_input_stores(twins):
    from krxflow.hooks import BatchedPostgresHook

    pg = twins
    frame = _frame()
    result = BatchedPostgresHook(record_stats=False).upsert("binary_probe", frame)
    assert result.rejected == 0 and result.inserted == len(frame)
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    with pg.cursor() as cur:
        cur.executemany(f"INSERT INTO text_probe ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                        [tuple(_as_text(v) for v in row) for row in frame[COLUMNS].itertuples(index=False)])
    binary, text = _contents(pg, "binary_probe"), _contents(pg, "text_probe")
    assert len(binary) == len(frame)
    assert binary == text
    # the rounding cases really were rounded half away from zero, as numeric_in does
    rounded = dict(pg.execute("SELECT price::text, true FROM binary_probe").fetchall())
    assert "1.0001" in rounded and "0.0001" in rounded and "0.0000" in rounded


def test_decimals_and_text_numbers_take_the_same_path(twins):
    from krxflow.hooks import BatchedPostgresHook

    pg = twins
    values = ["1.00005", "-0.00005", "1E+3", "12345678901234.12345678", "0.000000000000000000000051",
              "99999999999999.99994", "7", "-2.50005E-1"]
    frame = pd.DataFrame({"ticker": [f"{i:06d}" for i in range(len(values))],
                          "trade_date": dt.date(2024, 1, 2),
                          "price": [Decimal(v) for v in values]})
    result = BatchedPostgresHook(record_stats=False).upsert("binary_probe", frame)
    assert result.inserted == len(values) and result.rejected == 0
    stored = [r[0] for r in pg.execute("SELECT price::text FROM binary_probe ORDER BY ticker")]
    expected = [r[0] for r in pg.execute(
        "SELECT v::numeric(18, 4)::text FROM unnest(%s::text[]) WITH ORDINALITY AS x(v, i) ORDER BY i", (values,))]
    assert stored == expected


def test_tables_with_other_types_keep_the_text_copy(clean_db):
    from krxflow.hooks.binary_copy import binary_fields
    from krxflow.hooks.table_spec import TableSpec

    pg = clean_db
    spec = TableSpec.load(pg, "load_stats")  # jsonb
    assert binary_fields(list(spec.columns.values())) is None
    factors = TableSpec.load(pg, "adjustment_factors")  # numeric(20, 12): past an int64 of units
    assert binary_fields(list(factors.columns.values())) is None
    daily = TableSpec.load(pg, "daily_prices")
    assert binary_fields(list(daily.columns.values())) is not None
    indicators = TableSpec.load(pg, "daily_indicators")
    assert binary_fields(list(indicators.columns.values())) is not None


def test_doubles_scale_exactly_as_their_shortest_repr():
    """A numeric column's doubles are scaled arithmetically where that is exact and through their
    repr otherwise; either way each one gives the integer its shortest repr gives (the text path,
    which test_binary_copy_stores_what_text_input_stores pins to the server's numeric_in)."""
    import pyarrow as pa

    from krxflow.hooks.binary_copy import scaled_integers

    rng = np.random.default_rng(11)
    whole = rng.integers(-10**12, 10**12, 20_000).astype("float64")
    decimals = rng.integers(-10**15, 10**15, 60_000) / 10.0 ** rng.integers(0, 9, 60_000)
    spread = rng.normal(0, 1, 20_000) * 10.0 ** rng.integers(-12, 16, 20_000)
    edges = [1.00005, -1.00005, 2.675, 0.00005, -0.00004999, 1e-7, 0.1 + 0.2, -0.0, 0.0, 9070.5, 1.5e-05,
             99999999999999.99, 2.0**50 / 1e4, 2.0**50 / 1e4 + 0.5, 2.0**50 / 1e2 - 1, 2.0**53, 1e15 + 0.5,
             123456789.12345, 12.34565, 29.995, -29.995, 1e18, np.nan]
    values = pa.array(np.concatenate([whole, decimals, spread, edges]), from_pandas=True)
    valid = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    magnitude = np.abs(np.nan_to_num(values.to_numpy(zero_copy_only=False)))
    for scale in (0, 2, 4, 12):
        kept = ~valid | (magnitude < 9e17 / 10**scale)  # what fits an int64 of units (numeric(18, s))
        column = values.filter(pa.array(kept))
        got = scaled_integers(column, scale)
        np.testing.assert_array_equal(got, scaled_integers(column.cast(pa.string()), scale), err_msg=f"scale {scale}")
        assert got[~valid[kept]].tolist() == [0]
