"""The adjusted series from KRX's base prices: on KRX's real recorded answer and on every sample event.

Factors are found where the base price differs from the previous session's close; the adjusted
series is raw × the factors of later ex-dates, continuous across each ex-date (its change there
is KRX's own change against the base), and rerunning writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from krxflow.adjustment import adjusted_series, detect_factors
from krxflow.sample.market import EVENT_TICKERS, SampleMarket, SampleSource

RECORDED = Path(__file__).parent / "fixtures" / "krx_recorded" / "TestStockOhlcvByDateTest.test_ohlcv_with_not_adjusted.yaml"
TICKERS = 12


def _sessions():
    from krxflow.calendar import sessions

    return sessions().days


def _recorded_samsung() -> pd.DataFrame:
    from krxflow.krx.parsing import ticker_history_frame

    interaction = yaml.safe_load(RECORDED.read_text(encoding="utf-8"))["interactions"][0]
    output = json.loads(interaction["response"]["body"]["string"])["output"]
    return ticker_history_frame(pd.DataFrame(output), "005930")


def test_krx_recorded_samsung_split_gives_one_factor_of_one_fiftieth():
    raw = _recorded_samsung()
    assert raw.set_index("trade_date").loc[dt.date(2018, 5, 4), "base_price"] == 53_000  # 51,900 - (-1,100)
    factors = detect_factors(raw, _sessions())
    assert len(factors) == 1
    f = factors.iloc[0]
    assert (f.ex_date, f.previous_date) == (dt.date(2018, 5, 4), dt.date(2018, 5, 3))
    assert (f.previous_close, f.base_price, f.factor) == (2_650_000, 53_000, 0.02)
    assert (f.shares_before, f.shares_after, f.kind, bool(f.flagged)) == (128_386_494, 6_419_324_700, "split", False)
    adjusted = adjusted_series(raw, factors).set_index("trade_date")
    assert adjusted.loc[dt.date(2018, 5, 3), "close"] == 53_000  # 2,650,000 / 50
    assert adjusted.loc[dt.date(2018, 5, 4), "close"] == 51_900  # the ex-date itself is not adjusted
    assert adjusted.loc[dt.date(2018, 4, 27), "volume"] == raw.set_index("trade_date").loc[
        dt.date(2018, 4, 27), "volume"] * 50


def test_a_gap_in_the_loaded_rows_is_not_taken_for_an_ex_date():
    raw = _recorded_samsung()
    gapped = raw[raw["trade_date"] != dt.date(2018, 5, 3)]  # by-date backfill, 05-03 not loaded yet
    assert detect_factors(gapped, _sessions()).empty
    assert len(detect_factors(gapped)) == 1  # without the calendar it would guess across the gap


@pytest.fixture(scope="module")
def market():
    return SampleMarket(TICKERS)


def _load_histories(pg, market, tickers, first="2018-01-02", last="2026-12-31"):  # test_hook, test_partitions need 2016-17 empty
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.krx.tables import for_hook

    source = SampleSource(market.count)
    frames = [source.history(t, first, last, adjusted=False) for t in tickers]
    BatchedPostgresHook(record_stats=False).upsert("daily_prices", for_hook(pd.concat(frames, ignore_index=True)))


EXPECTED = {  # ticker position -> (ex-date, kind, flagged)
    0: (dt.date(2018, 5, 4), "split", False),
    EVENT_TICKERS["reverse_split"]: (dt.date(2022, 3, 14), "reverse_split", True),
    EVENT_TICKERS["bonus"]: (dt.date(2023, 6, 15), "rights_or_bonus", False),
    EVENT_TICKERS["rights"]: (dt.date(2024, 9, 10), "rights_or_bonus", False),
    EVENT_TICKERS["split_then_delisted"]: (dt.date(2021, 11, 2), "split", False),
}


def test_every_sample_event_gives_its_factor_and_a_continuous_adjusted_series(clean_db, market):
    from krxflow.krx.adjusting import adjust_tickers

    pg = clean_db
    tickers = [market.tickers[i] for i in EXPECTED]
    _load_histories(pg, market, tickers)
    first = adjust_tickers(tickers)
    assert first.factors_found == len(EXPECTED)
    stored = pd.DataFrame(pg.execute("SELECT ticker, ex_date, kind, flagged, factor::float8, base_price, "
                                     "previous_close FROM adjustment_factors ORDER BY ticker").fetchall(),
                          columns=["ticker", "ex_date", "kind", "flagged", "factor", "base", "prev"])
    for position, (ex_date, kind, flagged) in EXPECTED.items():
        row = stored[stored["ticker"] == market.tickers[position]].iloc[0]
        assert (row.ex_date, row.kind, row.flagged) == (ex_date, kind, flagged), market.tickers[position]
        # continuity: across the ex-date the adjusted close moves exactly as KRX's change against the base
        adj = dict(pg.execute("SELECT trade_date, close::float8 FROM daily_prices_adjusted WHERE ticker = %s "
                              "AND trade_date BETWEEN %s AND %s ORDER BY trade_date",
                              (row.ticker, ex_date - dt.timedelta(days=40), ex_date)).fetchall())
        raw = dict(pg.execute("SELECT trade_date, close FROM daily_prices WHERE ticker = %s AND trade_date <= %s",
                              (row.ticker, ex_date)).fetchall())
        days = sorted(adj)
        move = adj[days[-1]] / adj[days[-2]] - 1
        assert move == pytest.approx(raw[ex_date] / row.base - 1, abs=1e-6)
        assert abs(move) < 0.3
        # raw x factor before the ex-date, raw from the ex-date on
        assert adj[days[-2]] == pytest.approx(raw[days[-2]] * row.factor, abs=1e-4)
        assert adj[ex_date] == raw[ex_date]
    delisted = market.tickers[EVENT_TICKERS["split_then_delisted"]]
    assert pg.execute("SELECT count(*) FROM daily_prices_adjusted WHERE ticker = %s", (delisted,)).fetchone()[0] > 500
    again = adjust_tickers(tickers)
    assert again.rows_written == 0 and again.factors_written == 0


def test_a_by_date_backfill_in_any_order_yields_the_same_factors_and_series(clean_db, market):
    """Sessions loaded shuffled, each adjusted as it lands, end where one full pass over all of them ends."""
    from krxflow.calendar import trading_days
    from krxflow.krx.adjusting import adjust_market, adjust_session
    from krxflow.krx.loading import load_daily_prices

    pg = clean_db
    source = SampleSource(market.count)
    days = trading_days("2024-08-26", "2024-09-20")  # the rights issue on 2024-09-10 inside
    random.Random(7).shuffle(days)
    for day in days:
        load_daily_prices(source, day)
        adjust_session(day)

    def snapshot():
        factors = pg.execute("SELECT ticker, ex_date, previous_close, base_price, kind FROM adjustment_factors "
                             "ORDER BY 1, 2").fetchall()
        series = pg.execute("SELECT ticker, trade_date, open, high, low, close, volume, change_rate "
                            "FROM daily_prices_adjusted ORDER BY 1, 2").fetchall()
        return factors, series

    incremental = snapshot()
    rights = market.tickers[EVENT_TICKERS["rights"]]
    assert [(t, d) for t, d, *_ in incremental[0]] == [(rights, dt.date(2024, 9, 10))]
    assert len(incremental[1]) == pg.execute("SELECT count(*) FROM daily_prices").fetchone()[0]
    pg.execute("TRUNCATE adjustment_factors, daily_prices_adjusted")
    adjust_market()
    assert snapshot() == incremental


def test_adjusted_equals_raw_times_the_product_of_later_factors(market):
    raw = SampleSource(market.count).history(market.tickers[0], "2016-01-04", "2026-12-01", adjusted=False)
    # two factors on one ticker: the product applies before both, one factor between them
    factors = pd.DataFrame({"ticker": ["005930", "005930"], "ex_date": [dt.date(2017, 1, 2), dt.date(2018, 5, 4)],
                            "previous_close": [100, 2_650_000], "base_price": [50, 53_000]})
    adjusted = adjusted_series(raw, factors).set_index("trade_date")["close"]
    closes = raw.set_index("trade_date")["close"].astype(float)
    assert adjusted[dt.date(2016, 12, 29)] == pytest.approx(closes[dt.date(2016, 12, 29)] * 0.5 * 0.02, abs=1e-4)
    assert adjusted[dt.date(2017, 6, 1)] == pytest.approx(closes[dt.date(2017, 6, 1)] * 0.02, abs=1e-4)
    assert adjusted[dt.date(2019, 1, 2)] == closes[dt.date(2019, 1, 2)]
    assert np.isfinite(adjusted.to_numpy()).all()


def test_the_cross_check_agrees_with_krx_and_catches_a_wrong_factor(clean_db, market, redis_client, monkeypatch):
    """Through pykrx and the offline KRX: one KRX-adjusted request per ex-date ticker; a tampered factor is caught."""
    from krxflow.krx.adjusting import adjust_tickers, cross_check
    from krxflow.krx.source import PykrxSource
    from tests.fakes.krx_replay import KrxReplay

    pg = clean_db
    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    bonus, reverse = market.tickers[EVENT_TICKERS["bonus"]], market.tickers[EVENT_TICKERS["reverse_split"]]
    _load_histories(pg, market, [bonus, reverse])
    adjust_tickers([bonus, reverse])
    source = PykrxSource(min_interval=0)
    with KrxReplay(market, require_login=True) as replay:
        clean = cross_check(source, "2023-06-15")
        assert replay.received["MDCSTAT01701"] == 1
        assert [params["adjStkPrc"] for kind, params in replay.log if kind == "MDCSTAT01701"] == ["2"]
        flagged = cross_check(source, "2022-03-14")  # the consolidation relisted at an auction: flagged
        pg.execute("UPDATE daily_prices_adjusted SET close = close * 1.01 WHERE ticker = %s "
                   "AND trade_date = '2023-06-01'", (bonus,))
        caught = cross_check(source, "2023-06-15")
    assert clean == {"checked": 1, "mismatches": 0, "flagged": 0}
    assert flagged == {"checked": 1, "mismatches": 0, "flagged": 1}
    assert caught == {"checked": 1, "mismatches": 1, "flagged": 0}
    rows = pg.execute("SELECT status, details FROM load_stats WHERE operation = 'adjust_cross_check' ORDER BY id"
                      ).fetchall()
    assert [r[0] for r in rows] == ["ok", "warning", "warning"]
    assert rows[2][1]["mismatches"][bonus][0]["trade_date"] == "2023-06-01"
    assert "auction" in rows[1][1]["flagged"][0]["note"]
