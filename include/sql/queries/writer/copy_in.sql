-- {table}: identifier, {columns}: identifier list. Rows arrive as CSV from the writer.
COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)
