-- History of the ticker master: renames, market moves (e.g. KOSDAQ -> KOSPI), delistings and
-- relistings, as krx_tickers observed them. `stocks` holds the current state only; this table
-- keeps what it was before. One row per ticker, KST session date and changed field.
CREATE TABLE IF NOT EXISTS stock_changes (
    ticker          text NOT NULL CHECK (ticker ~ '^[0-9A-Z]{6}$'),
    changed_on      date NOT NULL,
    field           text NOT NULL CHECK (field IN ('name', 'market', 'delisted')),
    old_value       text,
    new_value       text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, changed_on, field)
);
CREATE INDEX IF NOT EXISTS stock_changes_changed_on_idx ON stock_changes (changed_on);
COMMENT ON TABLE stock_changes IS
    'Renames, market moves and (de)listings of tickers seen by the krx_tickers DAG (KST session dates).';
