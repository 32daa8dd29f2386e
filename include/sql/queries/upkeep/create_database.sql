-- {database}: identifier. The scratch database of a restore check.
CREATE DATABASE {database}
