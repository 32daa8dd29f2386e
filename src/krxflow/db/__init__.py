"""Database housekeeping: versioned migrations and time partitions.

``python -m krxflow.db migrate`` applies ``include/sql/migrations`` in order;
``python -m krxflow.db partitions`` creates the partitions every table needs.
"""
