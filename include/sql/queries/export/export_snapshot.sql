-- The export's snapshot, for its reader connections to import (krxflow.export.reading).
SELECT pg_export_snapshot()
