-- Writers wait while a partition is archived and dropped (SHARE: readers go on).
LOCK TABLE {relation} IN SHARE MODE
