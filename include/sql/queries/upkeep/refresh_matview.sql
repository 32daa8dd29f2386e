-- {view}: identifier. Plain refresh (locks out readers): only for a view never populated.
REFRESH MATERIALIZED VIEW {view}
