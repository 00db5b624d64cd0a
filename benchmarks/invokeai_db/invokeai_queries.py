"""Time InvokeAI 6.14.2's own gallery services on its database (run in InvokeAI's venv).

    /work/ext/invokeai-6.14.2/bin/python benchmarks/invokeai_db/invokeai_queries.py ROOT \
        --board BOARD_ID --search lighthouse --search aurora --repeat 3

Prints one JSON object: query label -> median milliseconds. Each query is a call of the
service method InvokeAI's web API makes for it (``SqliteImageRecordStorage.get_many`` for a
gallery page with its total, the board-record and board-image-record services for the board
list with counts and covers); "count by model" has no service in InvokeAI, so its time is
the nearest SQL over its metadata JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--board", required=True)
    ap.add_argument("--offset", type=int, default=500_000)
    ap.add_argument("--search", action="append", default=[])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from invokeai.app.services.board_image_records.board_image_records_sqlite import (
        SqliteBoardImageRecordStorage,
    )
    from invokeai.app.services.board_records.board_records_common import BoardRecordOrderBy
    from invokeai.app.services.board_records.board_records_sqlite import SqliteBoardRecordStorage
    from invokeai.app.services.image_records.image_records_common import (
        IMAGE_CATEGORIES,
    )
    from invokeai.app.services.image_records.image_records_sqlite import SqliteImageRecordStorage
    from invokeai.app.services.shared.sqlite.sqlite_common import SQLiteDirection
    from invokeai.app.services.shared.sqlite.sqlite_database import SqliteDatabase

    db = SqliteDatabase(args.root / "databases" / "invokeai.db", logging.getLogger("bench"))
    images = SqliteImageRecordStorage(db)
    boards = SqliteBoardRecordStorage(db)
    members = SqliteBoardImageRecordStorage(db)

    def page(**kw: object) -> object:  # the gallery's request: images, no intermediates
        return images.get_many(
            limit=100, categories=IMAGE_CATEGORIES, is_intermediate=False, is_admin=True, **kw
        )

    def board_list() -> object:
        out = []
        for b in boards.get_all(
            "system", True, BoardRecordOrderBy.CreatedAt, SQLiteDirection.Ascending
        ):
            cover = images.get_most_recent_image_for_board(b.board_id)
            out.append(
                (
                    b.board_id,
                    members.get_image_count_for_board(b.board_id),
                    members.get_asset_count_for_board(b.board_id),
                    cover.image_name if cover else None,
                )
            )
        return out

    r = args.repeat
    times = {
        "default page (list + count)": median_ms(lambda: page(), r),
        "offset page (list + count)": median_ms(lambda: page(offset=args.offset), r),
        "board page (list + count)": median_ms(lambda: page(board_id=args.board), r),
        "uncategorized page (list + count)": median_ms(lambda: page(board_id="none"), r),
        "newest first, not starred first": median_ms(lambda: page(starred_first=False), r),
        "boards with counts + covers": median_ms(board_list, r),
        "count by model": median_ms(
            lambda: db._conn.execute(
                "SELECT json_extract(metadata, '$.model.name') m, count(*) FROM images "
                "WHERE is_intermediate = 0 GROUP BY m"
            ).fetchall(),
            r,
        ),
    }
    for word in args.search:
        times[f"search {word!r} (list + count)"] = median_ms(lambda w=word: page(search_term=w), r)
    json.dump(times, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
