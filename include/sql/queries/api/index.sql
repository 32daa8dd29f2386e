-- One index of the master (404 when absent).
SELECT index_code AS code, name, index_group AS "group" FROM krx_indices WHERE index_code = %(code)s
