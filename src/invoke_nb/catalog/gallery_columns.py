"""The arrays behind the gallery's in-memory keys (:mod:`invoke_nb.catalog.gallery_keys`):
text values as small integer codes, the combinations of board, category and flags as classes,
and the columns in a buffer that grows by doubling."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FIELDS", "Classes", "Codes", "Columns", "code_or_none"]


class Codes:
    """Small integer codes for a text column's values; 0 is NULL."""

    def __init__(self) -> None:
        self.of: dict[str | None, int] = {None: 0}

    def get(self, value: str | None) -> int | None:
        return self.of.get(value)

    def code(self, value: str | None) -> int:
        found = self.of.get(value)
        if found is None:
            found = self.of[value] = len(self.of)
        return found

    def encode(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Codes of a whole column, through Arrow's dictionary encoding (no Python loop
        over rows)."""
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        encoded = pc.dictionary_encode(column)
        values = encoded.dictionary.to_pylist()
        table = np.array([self.code(v) for v in values] or [0], dtype=np.int32)
        indices = encoded.indices
        # the raw index buffer (a NULL's slot holds some index), then NULLs set apart
        raw = np.frombuffer(indices.buffers()[1], np.int32, len(indices), indices.offset * 4)
        codes = table[np.minimum(raw, len(table) - 1)]
        if encoded.null_count:
            codes[pc.is_null(encoded).to_numpy(zero_copy_only=False)] = 0
        return codes


FIELDS = {
    "t": np.int64,
    "ids": np.int64,
    "cls": np.int32,
    "model_name": np.int32,
    "model_key": np.int32,
    "base": np.int32,
}


class Columns:
    """The key arrays, over a buffer that grows by doubling (appends copy nothing)."""

    def __init__(self, values: dict[str, np.ndarray]) -> None:
        self.n = len(values["t"])
        cap = max(1024, int(self.n * 1.25))
        self._buf = {k: np.zeros(cap, dt) for k, dt in FIELDS.items()}
        for k, v in values.items():
            self._buf[k][: self.n] = v

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["_buf"][name][: self.__dict__["n"]]
        except KeyError:
            raise AttributeError(name) from None

    def append(self, values: dict[str, np.ndarray]) -> None:
        k = len(values["t"])
        if self.n + k > len(self._buf["t"]):
            cap = max(2 * len(self._buf["t"]), self.n + k)
            for name, old in self._buf.items():
                grown = np.zeros(cap, old.dtype)
                grown[: self.n] = old[: self.n]
                self._buf[name] = grown
        for name, v in values.items():
            self._buf[name][self.n : self.n + k] = v
        self.n += k

    def insert(self, at: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Insert rows before the positions ``at`` (of the current arrays), in order."""
        merged = {k: np.insert(getattr(self, k), at, values[k]) for k in FIELDS}
        self.__init__(merged)  # type: ignore[misc]


class Classes:
    """The combinations of board, category and flags that rows have, as small integers
    (0: a deleted row): a filter on those columns becomes one lookup table over the
    classes, and a row's match one gather (``table[cls]``) instead of a comparison per
    column."""

    def __init__(self) -> None:
        self.of: dict[int, int] = {}
        self.items: list[tuple[int, int, bool, bool] | None] = [None]

    def encode(
        self, board: np.ndarray, cat: np.ndarray, inter: np.ndarray, starred: np.ndarray
    ) -> np.ndarray:
        packed = (
            (board.astype(np.int64) << 32)
            | (cat.astype(np.int64) << 2)
            | (inter.astype(np.int64) << 1)
            | starred.astype(np.int64)
        )
        encoded = pc.dictionary_encode(pa.array(packed))
        table = np.array(
            [self._code(v) for v in encoded.dictionary.to_pylist()] or [0], dtype=np.int32
        )
        return table[encoded.indices.to_numpy()]

    def _code(self, packed: int) -> int:
        found = self.of.get(packed)
        if found is None:
            found = self.of[packed] = len(self.items)
            self.items.append(
                (packed >> 32, (packed >> 2) & 0x3FFFFFFF, bool(packed & 2), bool(packed & 1))
            )
        return found

    def table(self, keep: Callable[[int, int, bool, bool], bool]) -> np.ndarray:
        """The lookup table of a filter: whether each class is kept (deleted rows never)."""
        return np.array([False, *(keep(*item) for item in self.items[1:])], np.bool_)


def code_or_none(codes: Codes, value: str) -> int:
    """A value's code, or -1 (matches no row) if no row has it."""
    found = codes.get(value)
    return -1 if found is None else found
