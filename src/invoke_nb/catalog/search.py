"""The search term index: which images hold a word, without reading every prompt.

What is searched is what InvokeAI's gallery search looks through: the whole metadata JSON text
(every field: prompts, model, LoRAs, scheduler, seed, ... and the key names) and the creation
time as InvokeAI writes it (``2024-05-01 10:00:00.000``); also the positive prompt column, for
records that have a prompt but no metadata; see :data:`SEARCH_TEXT`. Words are runs of ASCII
letters and digits, lower-cased; words of digits only are not indexed (a million seeds would
make the vocabulary a million words long): such query words are checked as written.

Layout. ``search_terms`` is the vocabulary: each term once, with a small integer id. A query
word is matched against it as a substring, as InvokeAI's ``LIKE '%word%'`` would match it, and
only then are postings read. ``image_terms`` holds integer postings ``(term_id, image_id)``,
one per term and image (not per occurrence), each insert's run sorted by term so a term's
postings are a few zone-map ranges. A term found in most rows of a large insert (the JSON key
names, ``cpu``, ``main`` ...: about a third of all words) is stored the other way round, as
the images that do *not* hold it (``negative``): a key name then costs a few postings instead
of one per image, and a search for it reads that short list. Whatever the index cannot narrow
(numbers, punctuation, phrases) is checked as written, on the rows the index leaves.

The index follows the images table by a watermark on ``images.image_id`` (a sequence, never
reused): every transaction that inserts a few images (up to :data:`INDEX_CHUNK`) indexes them
before it commits (:func:`catch_up`). A bulk insert (an import) leaves its rows to the
catalog's background indexer (:mod:`invoke_nb.catalog.indexer`), which indexes them in runs
(:func:`index_some`), one short transaction each; meanwhile searches scan the rows above the
watermark, so results stay exact. Deleting an image leaves its postings: they name an
id no row will have again, so they never match (:func:`rebuild` drops them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from invoke_nb.catalog.connection import first

__all__ = [
    "CREATED_TEXT",
    "METADATA_TEXT",
    "PROMPT_TEXT",
    "SEARCH_TEXT",
    "SearchPlan",
    "WordTerms",
    "catch_up",
    "forget",
    "index_some",
    "lag",
    "narrow",
    "plan",
    "query_words",
    "read_run",
    "rebuild",
    "search_condition",
    "split_run",
    "word_terms",
    "write_run",
]

METADATA_TEXT = "lower(coalesce(CAST(metadata AS VARCHAR), ''))"
CREATED_TEXT = "strftime(created_at, '%Y-%m-%d %H:%M:%S.%g')"
PROMPT_TEXT = "lower(coalesce(positive_prompt, ''))"
SEARCH_TEXT = f"({METADATA_TEXT} || ' ' || {CREATED_TEXT} || ' ' || {PROMPT_TEXT})"
"""The text of a row that search looks in (a SQL expression over ``images``)."""

_WORD = re.compile(r"[a-z0-9]+")
_INDEXED_WORD = "[a-z0-9]*[a-z][a-z0-9]*"
"""The indexed words in SQL: runs of letters and digits holding a letter (as :data:`_WORD`
without the words of digits only), found by one regular expression pass."""
_INDEXED_TEXT = (
    f"({METADATA_TEXT} || ' ' || CASE WHEN contains({METADATA_TEXT}, {PROMPT_TEXT}) THEN '' "
    f"ELSE {PROMPT_TEXT} END)"
)
"""What the index splits: :data:`SEARCH_TEXT` without the creation time (digits only) and
without the prompt column where the metadata text holds it already (an imported image's
prompt is both): every word of it is then part of a word of the metadata text."""
MAX_TERMS = 1000
"""A query word inside more vocabulary terms than this is not looked up in the index (the
query is then checked as written, on the rows the other words found, or on all rows)."""
SMALL_INSERT = 64
"""Up to this many new rows are split into words in Python: a set-based statement costs a few
milliseconds to plan and run whatever the row count, which would cap single inserts near
150/s; Python's regex splits one row's text in microseconds."""
INDEX_CHUNK = 65_536
"""Image ids indexed per statement by a large catch-up (an import's): ~4 million words."""
NEGATIVE_SHARE = 0.5
"""A term held by more than this share of a large insert's first chunk is stored negative."""
NEGATIVE_MIN_ROWS = 1000
"""Only a catch-up of at least this many rows decides which terms are stored negative."""
NARROW_SHARE = 0.1
"""A search whose postings name at most this share of the rows is narrow (see :func:`narrow`)."""


def query_words(text: str) -> list[str]:
    """The words of a search, as the index splits text (distinct, in order)."""
    return list(dict.fromkeys(_WORD.findall(text.lower())))


def _indexable(word: str) -> bool:
    return not word.isdigit()


def _watermark(conn: Any) -> int:
    return int(first(conn.execute("SELECT indexed_upto FROM search_state"))[0])


def catch_up(conn: Any, limit: int | None = None) -> bool:
    """Index the rows added since the watermark (call inside the inserting transaction) when
    they are at most ``limit`` rows (:data:`INDEX_CHUNK`); returns whether the index is then
    complete. A larger lag (an import's million rows) is left to :func:`index_some` in runs,
    by the catalog's background indexer (:mod:`invoke_nb.catalog.indexer`): a save must not
    wait for it."""
    if lag(conn) > (INDEX_CHUNK if limit is None else limit):
        return False
    while index_some(conn):
        pass
    return True


def lag(conn: Any) -> int:
    """How many rows are not indexed yet (searches scan them, so results stay exact)."""
    mark = _watermark(conn)
    return int(first(conn.execute("SELECT count(*) FROM images WHERE image_id > ?", [mark]))[0])


def _next_run(conn: Any, max_ids: int | None) -> tuple[int, int, int]:
    """The watermark, the last image id of the next run and the run's row count: the ids up
    to ``max_ids`` (:data:`INDEX_CHUNK`) past the first id above the watermark (ids may jump
    where a rolled-back insert used some)."""
    mark = _watermark(conn)
    start = first(conn.execute("SELECT min(image_id) FROM images WHERE image_id > ?", [mark]))[0]
    if start is None:
        return mark, mark, 0
    hi, n = first(
        conn.execute(
            "SELECT max(image_id), count(*) FROM images WHERE image_id > ? AND image_id < ?",
            [mark, start + (INDEX_CHUNK if max_ids is None else max_ids)],
        )
    )
    return mark, int(hi), int(n)


def index_some(conn: Any, max_ids: int | None = None) -> int:
    """Index the next run of rows above the watermark (see :func:`_next_run`) and move the
    watermark past them; returns how many rows that was (0: nothing left).

    A few rows are split in Python (:data:`SMALL_INSERT`); a run is split set-based, its
    postings sorted by term, so a term's postings are a few zone-map ranges per run."""
    mark, hi, n = _next_run(conn, max_ids)
    if not n:
        return 0
    if n <= SMALL_INSERT:
        rows = conn.execute(
            f"SELECT image_id, {SEARCH_TEXT} FROM images WHERE image_id > ? AND image_id <= ? "
            "ORDER BY image_id",
            [mark, hi],
        ).fetchall()
        _index_small(conn, rows)
    else:
        _index_run(conn, mark, hi, mark if n >= NEGATIVE_MIN_ROWS else None)
    conn.execute("UPDATE search_state SET indexed_upto = ?", [hi])
    return n


_SPLIT = f"unnest(regexp_extract_all(x, '{_INDEXED_WORD}')) AS term"


def read_run(conn: Any, max_ids: int) -> tuple[int, int, pa.Table] | None:
    """The next run's bounds above the watermark and its rows' text as Arrow ``(image_id,
    x)``, for splitting away from the catalog (:func:`split_run`, :func:`write_run`); None
    when no rows are left, or when the run is small enough for :func:`index_some` to do in
    one go (its caller then does that)."""
    mark, hi, n = _next_run(conn, max_ids)
    if n <= SMALL_INSERT:
        return None
    texts = conn.sql(
        f"SELECT image_id, {_INDEXED_TEXT} AS x FROM images WHERE image_id > ? AND image_id <= ?",
        params=[mark, hi],
    ).to_arrow_table()
    return mark, hi, texts


def split_run(db: Any, texts: pa.Table) -> pa.Table:
    """The run's ``(image_id, term)`` words, split on ``db`` (a private in-memory DuckDB: the
    catalog stays free meanwhile)."""
    db.register("_texts", texts)
    try:
        return db.sql(f"SELECT image_id, {_SPLIT} FROM _texts").to_arrow_table()
    finally:
        db.unregister("_texts")


def write_run(conn: Any, run: tuple[int, int, pa.Table], words: pa.Table) -> bool:
    """Store a run's words split by :func:`split_run` and move the watermark past it; False
    (nothing written) if another writer moved the watermark since :func:`read_run`."""
    mark, hi, texts = run
    if _watermark(conn) != mark:
        return False
    old = mark if texts.num_rows >= NEGATIVE_MIN_ROWS else None
    _index_run(conn, mark, hi, old, words)
    conn.execute("UPDATE search_state SET indexed_upto = ?", [hi])
    return True


def _index_run(
    conn: Any, lo: int, hi: int, old_mark: int | None, words: pa.Table | None = None
) -> None:
    """Index the rows with ``lo < image_id <= hi`` (``words``: their words, already split);
    with ``old_mark``, first turn the terms most of these rows hold negative (rows up to
    ``old_mark`` are already indexed).

    Words become term ids by one join with the (small) vocabulary, which also drops the
    words that are not indexed (numbers); everything after that works on integers."""
    if words is not None:
        conn.register("_split_words", words)
        try:
            conn.execute("CREATE OR REPLACE TEMP TABLE _run_words AS SELECT * FROM _split_words")
        finally:
            conn.unregister("_split_words")
    else:
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE _run_words AS SELECT image_id, "
            f"{_SPLIT.replace('(x,', f'({_INDEXED_TEXT},')} "
            "FROM images WHERE image_id > ? AND image_id <= ?",
            [lo, hi],
        )
    try:
        conn.execute(
            "INSERT INTO search_terms SELECT term, nextval('search_term_seq'), FALSE "
            "FROM (SELECT DISTINCT term FROM _run_words w "
            "WHERE NOT EXISTS (SELECT 1 FROM search_terms s WHERE s.term = w.term))"
        )
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE _run_ids AS SELECT v.term_id, w.image_id "
            "FROM _run_words w JOIN search_terms v ON v.term = w.term"
        )
        conn.execute("DROP TABLE _run_words")
        if old_mark is not None:
            _turn_negative(conn, lo, hi, old_mark)
        neg = [
            r[0] for r in conn.execute("SELECT term_id FROM search_terms WHERE negative").fetchall()
        ]
        in_neg = f"IN ({', '.join(map(str, neg))})"
        conn.execute(
            "INSERT INTO image_terms SELECT term_id, image_id FROM _run_ids "
            f"{f'WHERE term_id NOT {in_neg}' if neg else ''} ORDER BY term_id, image_id"
        )
        if neg:  # each negative term: this run's rows that lack it
            conn.execute(
                "INSERT INTO image_terms SELECT v.term_id, i.image_id FROM images i CROSS JOIN "
                f"(SELECT term_id FROM search_terms WHERE term_id {in_neg}) v "
                "WHERE i.image_id > ? AND i.image_id <= ? AND NOT EXISTS (SELECT 1 FROM "
                f"(SELECT * FROM _run_ids WHERE term_id {in_neg}) r "
                "WHERE r.term_id = v.term_id AND r.image_id = i.image_id) "
                "ORDER BY v.term_id, i.image_id",
                [lo, hi],
            )
    finally:
        conn.execute("DROP TABLE IF EXISTS _run_words")
        conn.execute("DROP TABLE IF EXISTS _run_ids")


def _turn_negative(conn: Any, lo: int, hi: int, old_mark: int) -> None:
    """Store negative the terms held by most rows of this run: their postings for the rows
    indexed before (up to ``old_mark``) become the rows that lack them."""
    rows = first(
        conn.execute("SELECT count(*) FROM images WHERE image_id > ? AND image_id <= ?", [lo, hi])
    )[0]
    common = [
        r[0]
        for r in conn.execute(
            "SELECT term_id FROM _run_ids WHERE term_id NOT IN "
            "(SELECT term_id FROM search_terms WHERE negative) "
            "GROUP BY term_id HAVING count(*) > ?",
            [NEGATIVE_SHARE * rows],
        ).fetchall()
    ]
    if not common:
        return
    marks = ", ".join("?" * len(common))
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _turned AS "
        "SELECT v.term_id, i.image_id FROM images i CROSS JOIN search_terms v "
        f"WHERE v.term_id IN ({marks}) AND i.image_id <= ? AND NOT EXISTS (SELECT 1 "
        "FROM image_terms t WHERE t.term_id = v.term_id AND t.image_id = i.image_id)",
        [*common, old_mark],
    )
    try:
        conn.execute(f"DELETE FROM image_terms WHERE term_id IN ({marks})", common)
        conn.execute("INSERT INTO image_terms SELECT * FROM _turned ORDER BY term_id, image_id")
        conn.execute(f"UPDATE search_terms SET negative = TRUE WHERE term_id IN ({marks})", common)
    finally:
        conn.execute("DROP TABLE IF EXISTS _turned")


def _index_small(conn: Any, rows: list[tuple[int, str]]) -> None:
    """Index a few new rows, splitting their text (the same SQL expression) in Python."""
    words = {image_id: {w for w in _WORD.findall(text) if _indexable(w)} for image_id, text in rows}
    every = sorted(set().union(*words.values()))
    known: dict[str, tuple[int, bool]] = {}
    negative: list[tuple[str, int]] = []
    marks = ", ".join("?" * len(every)) or "NULL"
    for term, term_id, neg in conn.execute(
        f"SELECT term, term_id, negative FROM search_terms WHERE negative OR term IN ({marks})",
        every,
    ).fetchall():
        known[term] = (term_id, neg)
        if neg:
            negative.append((term, term_id))
    new = [w for w in every if w not in known]
    if new:
        for term, term_id in conn.execute(
            "INSERT INTO search_terms SELECT t, nextval('search_term_seq'), FALSE FROM (VALUES "
            f"{', '.join(['(?)'] * len(new))}) v(t) RETURNING term, term_id",
            new,
        ).fetchall():
            known[term] = (term_id, False)
    postings = [
        (known[w][0], image_id) for image_id, ws in words.items() for w in ws if not known[w][1]
    ]
    postings += [
        (term_id, image_id)
        for image_id, ws in words.items()
        for term, term_id in negative
        if term not in ws
    ]
    if not postings:
        return
    # one statement: DuckDB runs executemany as one statement per row
    values = ", ".join(["(?, ?)"] * len(postings))
    conn.execute(
        f"INSERT INTO image_terms SELECT * FROM (VALUES {values})",
        [x for p in sorted(postings) for x in p],
    )


def forget(conn: Any, names_sql: str, params: list[Any]) -> None:
    """Nothing to do before images are deleted: their postings name ids that no row will have
    again (``image_id`` comes from a sequence), so they never match. Kept so callers need not
    know; :func:`rebuild` drops such postings."""
    del conn, names_sql, params


def rebuild(conn: Any) -> None:
    """Build the whole index again from the images table (the migration, repairs)."""
    conn.execute("DELETE FROM image_terms")
    conn.execute("DELETE FROM search_terms")
    conn.execute("UPDATE search_state SET indexed_upto = -1")
    while index_some(conn):
        pass


def _lookup(conn: Any, word: str) -> tuple[list[int], list[int]] | None:
    """Vocabulary terms containing ``word``: (positive ids, negative ids); None if too many."""
    found = conn.execute(
        f"SELECT term_id, negative FROM search_terms WHERE contains(term, ?) LIMIT {MAX_TERMS + 1}",
        [word],
    ).fetchall()
    if len(found) > MAX_TERMS:
        return None
    return [t for t, neg in found if not neg], [t for t, neg in found if neg]


def _word_condition(pos: list[int], neg: list[int]) -> tuple[str, list[Any]]:
    """Rows holding at least one of the terms: in a positive term's postings, or missing
    from the postings of at least one negative term (absent from all their lists' overlap)."""
    parts: list[str] = []
    params: list[Any] = []
    if neg:
        sub = f"SELECT image_id FROM image_terms WHERE term_id IN ({', '.join('?' * len(neg))})"
        if len(neg) > 1:
            sub += f" GROUP BY image_id HAVING count(*) = {len(neg)}"
        parts.append(f"image_id NOT IN ({sub})")
        params += neg
    if pos:
        parts.append(
            "image_id IN (SELECT image_id FROM image_terms "
            f"WHERE term_id IN ({', '.join('?' * len(pos))}))"
        )
        params += pos
    return (parts[0] if len(parts) == 1 else f"({' OR '.join(parts)})"), params


@dataclass(frozen=True)
class WordTerms:
    """The vocabulary terms holding a one-word search, and the index's watermark: what the
    gallery's in-memory keys need to answer it (:mod:`invoke_nb.catalog.gallery_keys`)."""

    positive: tuple[int, ...]
    negative: tuple[int, ...]
    watermark: int

    def postings(self, conn: Any, above: int = -1) -> tuple[np.ndarray, np.ndarray, int]:
        """The terms' postings of the image ids above ``above``: the ids, whether each
        belongs to a negative term, and how many negative terms there are (one statement,
        read as Arrow)."""
        terms = [*self.positive, *self.negative]
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.bool_), 0
        table = conn.sql(
            "SELECT image_id, term_id FROM image_terms WHERE term_id IN "
            f"({', '.join(map(str, terms))}) AND image_id > {int(above)}"
        ).to_arrow_table()
        ids = table.column(0).to_numpy().astype(np.int64, copy=False)
        if not self.negative or not self.positive:  # one kind only: no need to look
            neg = np.full(ids.size, bool(self.negative))
        else:
            neg = np.isin(table.column(1).to_numpy(), np.asarray(self.negative, np.int64))
        return ids, neg, len(self.negative)


def word_terms(conn: Any, text: str) -> WordTerms | None:
    """:class:`WordTerms` of a search that the index answers alone: one word (the query is
    that word, case aside: a phrase, or punctuation, needs the text checked as written),
    not all digits, inside at most :data:`MAX_TERMS` vocabulary terms. None otherwise.
    One statement reads the terms and the watermark."""
    words = query_words(text)
    if len(words) != 1 or text.lower() != words[0] or not _indexable(words[0]):
        return None
    rows = conn.execute(
        "SELECT NULL, NULL, indexed_upto FROM search_state UNION ALL "
        "(SELECT term_id, negative, NULL FROM search_terms WHERE contains(term, ?) "
        f"LIMIT {MAX_TERMS + 1})",
        [words[0]],
    ).fetchall()
    mark = next(r[2] for r in rows if r[0] is None)
    found = [r for r in rows if r[0] is not None]
    if len(found) > MAX_TERMS:
        return None
    return WordTerms(
        tuple(t for t, neg, _ in found if not neg), tuple(t for t, neg, _ in found if neg), mark
    )


@dataclass(frozen=True)
class SearchPlan:
    """How a search is answered: its condition on ``images`` (:func:`search_condition`) and
    whether the index leaves few rows (:func:`narrow`), found by :func:`plan` together."""

    cond: str
    params: list[Any]
    narrow: bool


_mark_hint = [-1]
"""The index watermark this process saw last (see :func:`plan`)."""


def plan(conn: Any, text: str) -> SearchPlan:
    """:func:`search_condition` and :func:`narrow` of a search at once: each word looked up
    in the vocabulary once, the watermark, the rows above it and the row count read by one
    statement (each statement costs a few tenths of a millisecond, whatever it does). The
    check for rows above the watermark takes the watermark seen last as its bound, and runs
    again when the watermark has moved since."""
    words = query_words(text)
    looked = {w: _lookup(conn, w) for w in words if _indexable(w)}
    mark, total, above = first(
        conn.execute(
            "SELECT indexed_upto, (SELECT count(*) FROM images), "
            "EXISTS (SELECT 1 FROM images WHERE image_id > ?) FROM search_state",
            [_mark_hint[0]],
        )
    )
    if mark != _mark_hint[0]:
        _mark_hint[0] = mark
        above = first(conn.execute("SELECT count(*) > 0 FROM images WHERE image_id > ?", [mark]))
        above = above[0]
    cond, params = _condition(words, text, looked, mark if above else None)
    return SearchPlan(cond, params, _narrow(conn, words, looked, total))


def narrow(conn: Any, text: str) -> bool:
    """Whether the index leaves few rows for this search (at most :data:`NARROW_SHARE` of
    them): the page is then found by sorting those rows at once; a broad search (a word most
    rows hold, or one the index cannot look up) pages like an unfiltered gallery, checking the
    search on the rows next to the page."""
    total = first(conn.execute("SELECT count(*) FROM images"))[0]
    words = query_words(text)
    return _narrow(conn, words, {w: _lookup(conn, w) for w in words if _indexable(w)}, total)


def _narrow(
    conn: Any,
    words: list[str],
    looked: dict[str, tuple[list[int], list[int]] | None],
    total: int,
) -> bool:
    best = None
    for w in words:
        if not _indexable(w):
            continue
        found = looked[w]
        if found is None:
            continue
        pos, neg = found
        if neg:
            continue
        if not pos:
            return True
        n = first(
            conn.execute(
                f"SELECT count(*) FROM image_terms WHERE term_id IN ({', '.join('?' * len(pos))})",
                pos,
            )
        )[0]
        best = n if best is None else min(best, n)
    return best is not None and best <= NARROW_SHARE * total


def search_condition(conn: Any, text: str) -> tuple[str, list[Any]]:
    """A WHERE condition on ``images`` for a search, and its parameters.

    InvokeAI's rule: the query occurs, case-insensitively, in the metadata text or the
    creation time. Each word of the query must then be part of a word of the row's text, so
    the index finds every candidate; a query that is not one plain word is also checked as
    written, on those candidates only. A query with no letters or digits is a scan. Rows
    above the index's watermark (an import that left the index for later) are checked as
    written, so results are exact whether or not the index has caught up.
    """
    words = query_words(text)
    looked = {w: _lookup(conn, w) for w in words if _indexable(w)}
    mark = _watermark(conn)
    above = first(conn.execute("SELECT count(*) > 0 FROM images WHERE image_id > ?", [mark]))[0]
    return _condition(words, text, looked, mark if above else None)


def _condition(
    words: list[str],
    text: str,
    looked: dict[str, tuple[list[int], list[int]] | None],
    unindexed_above: int | None,
) -> tuple[str, list[Any]]:
    """:func:`search_condition` from the words' lookups; ``unindexed_above``: the watermark,
    if rows above it exist."""
    needle = text.lower()
    like = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    phrase = " OR ".join(
        f"{text} LIKE ? ESCAPE '\\'" for text in (METADATA_TEXT, CREATED_TEXT, PROMPT_TEXT)
    )
    phrase = f"({phrase})"
    cond, params = _indexed_condition(words, needle, like, phrase, looked)
    if cond != phrase and unindexed_above is not None:
        # rows not indexed yet (an import that left the index for later): checked as written
        mark = unindexed_above
        cond = f"((image_id <= ? AND {cond}) OR (image_id > ? AND {phrase}))"
        params = [mark, *params, mark, *[f"%{like}%"] * 3]
    return cond, params


def _indexed_condition(
    words: list[str],
    needle: str,
    like: str,
    phrase: str,
    looked: dict[str, tuple[list[int], list[int]] | None],
) -> tuple[str, list[Any]]:
    if not words:
        return phrase, [f"%{like}%"] * 3
    conds: list[str] = []
    params: list[Any] = []
    broad = False  # a number, or a word inside too many terms, is left to the check
    for w in words:
        if not _indexable(w):  # numbers are not indexed
            broad = True
            continue
        found = looked[w]
        if found is None:
            broad = True
            continue
        pos, neg = found
        if not pos and not neg:
            return "FALSE", []
        cond, args = _word_condition(pos, neg)
        conds.append(cond)
        params += args
    if not conds:
        return phrase, [f"%{like}%"] * 3
    if broad or needle != words[0]:
        conds.append(phrase)
        params += [f"%{like}%"] * 3
    return " AND ".join(conds), params
