"""What the gallery's in-memory keys derive per query (:mod:`invoke_nb.catalog.gallery_keys`):
a query's matches as a stream (a mask with counts per block, or a rare word's few positions)
and the rows holding a search word."""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK", "SparseStream", "Stream", "Word", "sorted_unique"]

BLOCK = 4096
"""Positions per counted block of a stream (see :class:`Stream`)."""


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted, without repeats (a sort: numpy's ``unique`` hashes first, 5x slower here)."""
    out = np.sort(values)
    if out.size > 1:
        out = out[np.concatenate(([True], out[1:] != out[:-1]))]
    return out


class Stream:
    """The rows a query keeps, as a mask over the positions, with counts per block of
    :data:`BLOCK` positions: a page at any depth skips whole blocks by their counts and
    looks only at the few blocks that hold it."""

    def __init__(self, mask: np.ndarray) -> None:
        self.n = len(mask)
        self._m = np.zeros(max(BLOCK, int(self.n * 1.25) + BLOCK), np.bool_)
        self._m[: self.n] = mask
        self.blocks = self._count_blocks(0, self.n)
        self.total = int(self.blocks.sum())

    @property
    def mask(self) -> np.ndarray:
        return self._m[: self.n]

    def _count_blocks(self, first_block: int, n: int) -> np.ndarray:
        """Counts of the blocks from ``first_block`` up to the one holding position n - 1."""
        lo = first_block * BLOCK
        n_blocks = -(-(n - lo) // BLOCK)
        padded = self._m[lo : lo + n_blocks * BLOCK]
        if padded.size < n_blocks * BLOCK:  # the buffer ends inside the last block
            padded = np.concatenate([padded, np.zeros(n_blocks * BLOCK - padded.size, np.bool_)])
        return padded.reshape(n_blocks, BLOCK).sum(axis=1, dtype=np.int64)

    def set(self, at: np.ndarray, values: np.ndarray) -> None:
        """Rows at positions ``at`` now match or not."""
        old = self._m[at]
        changed = old != values
        if not changed.any():
            return
        at, values = at[changed], values[changed]
        self._m[at] = values
        np.add.at(self.blocks, at // BLOCK, np.where(values, 1, -1))
        self.total = int(self.blocks.sum())

    def positions_in(self, lo: int, hi: int) -> np.ndarray:
        """Positions of the kept rows from ``lo`` to ``hi`` (exclusive)."""
        return lo + np.flatnonzero(self._m[lo:hi])

    def extend(self, start: int, values: np.ndarray) -> None:
        """Rows appended at ``start`` (the old end)."""
        k = len(values)
        if start + k > len(self._m):
            grown = np.zeros(2 * (start + k) + BLOCK, np.bool_)
            grown[:start] = self._m[:start]
            self._m = grown
        self._m[start : start + k] = values
        self.n = start + k
        first_block = start // BLOCK
        self.blocks = np.concatenate(
            [self.blocks[:first_block], self._count_blocks(first_block, self.n)]
        )
        self.total = int(self.blocks.sum())

    def count(self, lo: int, hi: int) -> int:
        """Rows kept among positions ``lo`` to ``hi`` (exclusive)."""
        if hi <= lo:
            return 0
        b_lo, b_hi = -(-lo // BLOCK), hi // BLOCK
        if b_lo >= b_hi:
            return int(np.count_nonzero(self._m[lo:hi]))
        return (
            int(np.count_nonzero(self._m[lo : b_lo * BLOCK]))
            + int(self.blocks[b_lo:b_hi].sum())
            + int(np.count_nonzero(self._m[b_hi * BLOCK : hi]))
        )

    def take(self, rank: int, k: int, desc: bool) -> np.ndarray:
        """Positions of the kept rows ranked ``rank`` to ``rank + k`` in page order (newest
        first when ``desc``)."""
        counts = self.blocks[::-1] if desc else self.blocks
        cum = np.cumsum(counts)
        b = int(np.searchsorted(cum, rank, "right"))
        r = rank - (int(cum[b - 1]) if b else 0)
        out: list[np.ndarray] = []
        need = k
        n_blocks = len(self.blocks)
        while need > 0 and b < n_blocks:
            if counts[b]:
                block = n_blocks - 1 - b if desc else b
                lo = block * BLOCK
                found = lo + np.flatnonzero(self._m[lo : min(lo + BLOCK, self.n)])
                if desc:
                    found = found[::-1]
                part = found[r : r + need]
                out.append(part)
                need -= part.size
                r = 0
            b += 1
        return np.concatenate(out) if out else np.zeros(0, np.int64)


class SparseStream:
    """A stream of few rows (a rare search word's): their sorted positions."""

    def __init__(self, positions: np.ndarray) -> None:
        self.p = positions.astype(np.int64, copy=False)

    @property
    def total(self) -> int:
        return int(self.p.size)

    def positions_in(self, lo: int, hi: int) -> np.ndarray:
        return self.p[np.searchsorted(self.p, lo) : np.searchsorted(self.p, hi)]

    def count(self, lo: int, hi: int) -> int:
        return int(np.searchsorted(self.p, hi) - np.searchsorted(self.p, lo)) if hi > lo else 0

    def set(self, at: np.ndarray, values: np.ndarray) -> None:
        kept = np.setdiff1d(self.p, at[~values], assume_unique=True)
        self.p = np.union1d(kept, at[values])

    def extend(self, start: int, values: np.ndarray) -> None:
        self.p = np.concatenate([self.p, start + np.flatnonzero(values)])

    def take(self, rank: int, k: int, desc: bool) -> np.ndarray:
        if desc:
            end = self.p.size - rank
            return self.p[max(end - k, 0) : max(end, 0)][::-1]
        return self.p[rank : rank + k]


class Word:
    """The rows holding a search word, up to position ``n`` and the index's watermark
    ``mark``: as sorted ``positions`` (a word few rows hold) or a ``mask``."""

    def __init__(self, positions: np.ndarray | None, mask: np.ndarray | None, n: int, mark: int):
        self.positions, self.mask, self.n, self.mark = positions, mask, n, mark

    def holds(self, at: np.ndarray) -> np.ndarray:
        if self.mask is not None:
            return self.mask[at]
        return np.isin(at, self.positions)

    def extend(self, holders: np.ndarray, n: int, mark: int) -> None:
        """Rows appended since (``holders``: whether each holds the word)."""
        if self.mask is not None:
            self.mask = np.concatenate([self.mask, holders])
        else:
            assert self.positions is not None
            self.positions = np.concatenate([self.positions, self.n + np.flatnonzero(holders)])
        self.n, self.mark = n, mark
