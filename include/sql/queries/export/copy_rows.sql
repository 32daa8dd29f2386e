-- Every row of one relation (a partition or a whole table) as CSV, for pyarrow's CSV reader:
-- {columns} are the exported expressions (timestamptz as UTC, see krxflow.export.reading),
-- {relation} an identifier. Sorted later, in Arrow, by the table's primary key.
COPY (SELECT {columns} FROM {relation}) TO STDOUT WITH (FORMAT csv)
