-- {definition}: a materialized view's defining query, as pg_get_viewdef deparsed it (the server's own
-- text from countable_relations.sql, never user input). How many rows the view holds once rebuilt
-- from the data this transaction sees: what a restore gives, since pg_dump carries a view's
-- definition and a REFRESH, never its rows. The rows it stores may lag the tables (a load committed
-- since the last refresh, a refresh under way), so they are not what a restore check may expect.
SELECT count(*) FROM ({definition}) AS rebuilt
