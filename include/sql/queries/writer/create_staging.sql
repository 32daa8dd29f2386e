-- {staging}, {target}: identifiers. A constraint-free copy of the target's columns, gone at commit.
CREATE TEMP TABLE {staging} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP
