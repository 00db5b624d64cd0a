"""Record lists as Arrow IPC: one binary buffer per table, read in the browser by
``extension/src/shared/arrow.ts``. Columnar and typed, so 10,000 gallery rows cost
one small buffer instead of a JSON array of dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

__all__ = ["records_to_ipc", "table_to_ipc"]


def table_to_ipc(table: pa.Table) -> bytes:
    """An Arrow table as IPC stream bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def records_to_ipc(records: Sequence[Mapping[str, Any]], schema: pa.Schema | None = None) -> bytes:
    """Rows (dicts) as IPC stream bytes; ``schema`` fixes column types (needed for no rows)."""
    if not records and schema is None:
        raise ValueError("records_to_ipc: an empty record list needs an explicit schema")
    table = pa.Table.from_pylist(list(records), schema=schema)
    return table_to_ipc(table)
