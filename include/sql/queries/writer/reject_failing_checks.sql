-- {staging}: identifier; {passes}: the target's CHECK expressions ANDed, NULL counting as a pass
-- (as PostgreSQL does). Removes the rows the target would refuse and returns them for the report.
DELETE FROM {staging} WHERE NOT ({passes}) RETURNING {columns}
