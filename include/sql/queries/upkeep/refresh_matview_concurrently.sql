-- {view}: identifier. Readers keep the old rows until the new ones are in; needs a unique index
-- and a populated view.
REFRESH MATERIALIZED VIEW CONCURRENTLY {view}
