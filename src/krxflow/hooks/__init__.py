"""The writer: :class:`BatchedPostgresHook`, the only way krxflow writes to PostgreSQL."""

from krxflow.hooks.batched_postgres import BadInputError, BatchedPostgresHook, WriteResult

__all__ = ["BadInputError", "BatchedPostgresHook", "WriteResult"]
