-- {table}, {key}: identifiers. Does the target already hold any row in the incoming key range?
SELECT EXISTS (SELECT 1 FROM {table} WHERE {key} BETWEEN %(low)s AND %(high)s)
