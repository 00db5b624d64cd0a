"""The search term index: which images hold a word, without reading every prompt.

``image_terms`` holds one row per (term, image) for the words of each image's searchable
text, which is what InvokeAI's gallery search looks through: the whole metadata JSON text
(every field: prompts, model, LoRAs, scheduler, seed, ... and the key names) and the creation
time as InvokeAI writes it (``2024-05-01 10:00:00.000``); also the positive prompt column,
for records that have a prompt but no metadata; see :data:`SEARCH_TEXT`. Words are runs of
ASCII letters and digits, lower-cased; words of digits only are not indexed. ``search_terms``
lists each term once, so a query word is first matched against the (small) vocabulary as a
substring, as InvokeAI's ``LIKE '%word%'`` would match it, and only then are postings read.
Whatever the index cannot narrow (numbers, punctuation, phrases) is checked as written.

The index follows the images table by a watermark on ``images.image_id`` (a sequence):
every transaction that inserts images calls :func:`catch_up` before it commits, so the index
never lags behind a committed row; deletes remove their postings in the same transaction.
"""

from __future__ import annotations

import re
from typing import Any

from invoke_nb.catalog.connection import first

__all__ = [
    "CREATED_TEXT",
    "METADATA_TEXT",
    "PROMPT_TEXT",
    "SEARCH_TEXT",
    "catch_up",
    "forget",
    "query_words",
    "rebuild",
    "search_condition",
]

METADATA_TEXT = "lower(coalesce(CAST(metadata AS VARCHAR), ''))"
CREATED_TEXT = "strftime(created_at, '%Y-%m-%d %H:%M:%S.%g')"
PROMPT_TEXT = "lower(coalesce(positive_prompt, ''))"
SEARCH_TEXT = f"({METADATA_TEXT} || ' ' || {CREATED_TEXT} || ' ' || {PROMPT_TEXT})"
"""The text of a row that search looks in (a SQL expression over ``images``)."""

_SPLIT = "[^a-z0-9]+"
_WORD = re.compile(r"[a-z0-9]+")
_NUMERIC = "regexp_full_match(term, '[0-9]+')"
MAX_TERMS = 1000
"""A query word inside more vocabulary terms than this is not looked up in the index (the
query is then checked as written, on the rows the other words found, or on all rows)."""


def query_words(text: str) -> list[str]:
    """The words of a search, as the index splits text (distinct, in order)."""
    return list(dict.fromkeys(_WORD.findall(text.lower())))


def _postings_sql(where: str) -> str:
    # A word repeated in a row gives repeated postings: lookups take image ids as a set, and
    # de-duplicating each row's words (list_distinct) would cost twice the splitting itself.
    # Words of digits only (seeds, sizes, dates) are not indexed: a million distinct seeds
    # would make the vocabulary a million words long; such query words are checked as
    # written (see search_condition). Sorted by term, each insert's run lets zone maps skip
    # to a term's row groups.
    return (
        "SELECT term, image_id FROM ("
        f"SELECT image_id, unnest(string_split_regex({SEARCH_TEXT}, '{_SPLIT}')) AS term "
        f"FROM images WHERE {where}) WHERE term <> '' AND NOT {_NUMERIC} ORDER BY term"
    )


def _index(conn: Any, where: str, params: list[Any]) -> None:
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _new_postings AS {_postings_sql(where)}", params)
    try:
        conn.execute("INSERT INTO image_terms SELECT term, image_id FROM _new_postings")
        conn.execute(
            "INSERT INTO search_terms SELECT DISTINCT n.term FROM _new_postings n "
            "WHERE NOT EXISTS (SELECT 1 FROM search_terms s WHERE s.term = n.term)"
        )
    finally:
        conn.execute("DROP TABLE IF EXISTS _new_postings")


def _watermark(conn: Any) -> int:
    return int(first(conn.execute("SELECT indexed_upto FROM search_state"))[0])


SMALL_INSERT = 64
INDEX_CHUNK = 65_536
"""Image ids indexed per statement by a large catch-up (an import's): ~5 million postings."""
"""Up to this many new rows are split into words in Python: a set-based statement costs a few
milliseconds to plan and run whatever the row count, which would cap single inserts near
150/s; Python's regex splits one row's text in microseconds."""


def catch_up(conn: Any) -> int:
    """Index the rows added since the watermark (call inside the inserting transaction);
    returns how many rows were indexed."""
    mark = _watermark(conn)
    rows = conn.execute(
        f"SELECT image_id, {SEARCH_TEXT} FROM images WHERE image_id > ? "
        f"ORDER BY image_id LIMIT {SMALL_INSERT + 1}",
        [mark],
    ).fetchall()
    if not rows:
        return 0
    if len(rows) <= SMALL_INSERT:
        _index_small(conn, rows)
        conn.execute("UPDATE search_state SET indexed_upto = ?", [rows[-1][0]])
        return len(rows)
    top, n = first(
        conn.execute("SELECT max(image_id), count(*) FROM images WHERE image_id > ?", [mark])
    )
    # in runs of INDEX_CHUNK ids, each sorted by term: memory stays bounded (one sort of all
    # of a million images' words holds ~5 GiB) and a term's postings are still a few
    # row-group ranges, one per run, for the zone maps to find
    lo = mark
    while lo < top:
        hi = min(top, lo + INDEX_CHUNK)
        _index(conn, "image_id > ? AND image_id <= ?", [lo, hi])
        lo = hi
    conn.execute("UPDATE search_state SET indexed_upto = ?", [top])
    return int(n)


def _index_small(conn: Any, rows: list[tuple[int, str]]) -> None:
    """Index a few new rows, splitting their text (the same SQL expression) in Python."""
    postings = [
        (term, image_id)
        for image_id, text in rows
        for term in _WORD.findall(text)
        if not term.isdigit()
    ]
    if not postings:
        return
    # one statement each: DuckDB runs executemany as one statement per row
    values = ", ".join(["(?, ?)"] * len(postings))
    conn.execute(
        f"INSERT INTO image_terms SELECT * FROM (VALUES {values})",
        [x for p in sorted(postings) for x in p],
    )
    terms = sorted({t for t, _ in postings})
    conn.execute(
        "INSERT INTO search_terms SELECT v.term FROM (VALUES "
        f"{', '.join(['(?)'] * len(terms))}) v(term) "
        "WHERE NOT EXISTS (SELECT 1 FROM search_terms s WHERE s.term = v.term)",
        terms,
    )


def forget(conn: Any, names_sql: str, params: list[Any]) -> None:
    """Drop the postings of the images selected by ``names_sql`` (a query returning
    image_name), before they are deleted, in the deleting transaction."""
    conn.execute(
        "DELETE FROM image_terms WHERE image_id IN "
        f"(SELECT image_id FROM images WHERE image_name IN ({names_sql}))",
        params,
    )


def rebuild(conn: Any) -> None:
    """Build the whole index again from the images table (the migration, repairs)."""
    conn.execute("DELETE FROM image_terms")
    conn.execute("DELETE FROM search_terms")
    conn.execute("UPDATE search_state SET indexed_upto = -1")
    top = first(conn.execute("SELECT coalesce(max(image_id), -1) FROM images"))[0]
    if top >= 0:
        conn.execute(f"INSERT INTO image_terms {_postings_sql('TRUE')}")
        conn.execute("INSERT INTO search_terms SELECT DISTINCT term FROM image_terms")
    conn.execute("UPDATE search_state SET indexed_upto = ?", [top])


def search_condition(conn: Any, text: str) -> tuple[str, list[Any]]:
    """A WHERE condition on ``images`` for a search, and its parameters.

    InvokeAI's rule: the query occurs, case-insensitively, in the metadata text or the
    creation time. Each word of the query must then be part of a word of the row's text, so
    the index finds every candidate; a query that is not one plain word is also checked as
    written, on those candidates only. A query with no letters or digits is a scan. Rows
    above the index's watermark (an import that left the index for later) are checked as
    written too, so results are exact whether or not the index has caught up.
    """
    words = query_words(text)
    needle = text.lower()
    like = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    phrase = " OR ".join(
        f"{text} LIKE ? ESCAPE '\\'" for text in (METADATA_TEXT, CREATED_TEXT, PROMPT_TEXT)
    )
    phrase = f"({phrase})"
    cond, params = _indexed_condition(conn, words, needle, like, phrase)
    mark = _watermark(conn)
    if (
        cond != phrase
        and first(conn.execute("SELECT count(*) > 0 FROM images WHERE image_id > ?", [mark]))[0]
    ):
        # rows not indexed yet (an import that left the index for later): checked as written
        cond = f"(({cond}) OR (image_id > ? AND {phrase}))"
        params = [*params, mark, *[f"%{like}%"] * 3]
    return cond, params


def _indexed_condition(
    conn: Any, words: list[str], needle: str, like: str, phrase: str
) -> tuple[str, list[Any]]:
    if not words:
        return phrase, [f"%{like}%"] * 3
    ids: list[str] = []
    params: list[Any] = []
    broad = False  # a number, or a word inside too many terms, is left to the check
    for w in words:
        if w.isdigit():  # numbers are not indexed
            broad = True
            continue
        terms = [
            r[0]
            for r in conn.execute(
                f"SELECT term FROM search_terms WHERE contains(term, ?) LIMIT {MAX_TERMS + 1}", [w]
            ).fetchall()
        ]
        if not terms:
            return "FALSE", []
        if len(terms) > MAX_TERMS:
            broad = True
            continue
        ids.append(
            f"SELECT image_id FROM image_terms WHERE term IN ({', '.join('?' * len(terms))})"
        )
        params += terms
    if not ids:
        return phrase, [f"%{like}%"] * 3
    cond = f"image_id IN ({' INTERSECT '.join(ids)})"
    if broad or needle != words[0]:
        cond += f" AND {phrase}"
        params += [f"%{like}%"] * 3
    return cond, params
