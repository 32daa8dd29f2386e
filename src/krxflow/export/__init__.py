"""Research-ready files: the market database as zstd Parquet, partitioned by year and month.

* :mod:`~krxflow.export.datasets` — what is exported (tables, their date column, file layout);
* :mod:`~krxflow.export.destination` — where: a local folder, or any pyarrow/fsspec filesystem
  (an S3-compatible bucket) named by the ``krxflow_export`` Connection;
* :mod:`~krxflow.export.reading` — PostgreSQL rows to Arrow tables (COPY … CSV, typed from the catalog);
* :mod:`~krxflow.export.manifest` — ``manifest.json``: every file with rows, checksum, schema, as-of;
* :mod:`~krxflow.export.exporter` — the incremental, atomic export (``krx_export``) and the archive
  of a partition before ``db_retention`` drops it.

``docs/export.md`` is the user's page (layout, the DuckDB "as known on" query, loading an archive back).
"""
