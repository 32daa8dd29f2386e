-- {database}: identifier. Drop a restore check's scratch database, ending leftover sessions.
DROP DATABASE IF EXISTS {database} WITH (FORCE)
