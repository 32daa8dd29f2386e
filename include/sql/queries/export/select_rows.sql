-- Every row of one relation (a partition or a whole table), read by the ADBC driver as binary
-- COPY into Arrow (krxflow.export.reading): {columns} and {relation} are identifiers. Sorted
-- later, in Arrow, by the table's primary key (the server's cores are busy encoding).
SELECT {columns} FROM {relation}
