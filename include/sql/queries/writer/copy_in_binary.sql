-- {table}: identifier, {columns}: identifier list. Rows arrive in PostgreSQL's binary COPY format
-- (krxflow.hooks.binary_copy): the server parses no text.
COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary)
