"""``invoke-nb import-invokeai`` from the command line: ``--root`` on either side of the
command, a library whose image files are all missing, and skip counts past the detail cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from invokeai_root import make_invokeai_root

from invoke_nb.catalog import Catalog
from invoke_nb.cli import build_parser, main
from invoke_nb.interchange.invokeai import MAX_SKIPPED_DETAILS, InvokeAIImportReport


def test_root_is_accepted_after_the_command(tmp_path: Path) -> None:
    p = build_parser()
    before = p.parse_args(["--root", "a", "import-invokeai", "R"])
    after = p.parse_args(["import-invokeai", "R", "--root", "b"])
    neither = p.parse_args(["import-invokeai", "R"])
    nested = p.parse_args(["models", "list", "--root", "c"])
    assert (before.root, after.root, neither.root, nested.root) == ("a", "b", None, "c")

    ia = make_invokeai_root(tmp_path / "invokeai")
    ia.add_image(metadata={"positive_prompt": "a cat"})
    studio_root = tmp_path / "studio"
    assert main(["import-invokeai", str(ia.root), "--root", str(studio_root), "--quiet"]) == 0
    with Catalog(studio_root) as cat:
        assert cat.images.count() == 1


def test_all_image_files_missing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ia = make_invokeai_root(tmp_path / "invokeai")
    for i in range(3):
        ia.add_image(metadata={"positive_prompt": f"p{i}"}, write_file=False)
    studio_root = tmp_path / "studio"
    code = main(["--root", str(studio_root), "import-invokeai", str(ia.root), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no image was imported" in err and "all 3 images are missing" in err
    assert "--files none" in err
    with Catalog(studio_root) as cat:
        assert cat.images.count(is_intermediate=None) == 0
    # records only: the same library imports, and says nothing of files
    assert main(["--root", str(studio_root), "import-invokeai", str(ia.root), "--quiet",
                 "--files", "none"]) == 0  # fmt: skip
    with Catalog(studio_root) as cat:
        assert cat.images.count() == 3


def test_skip_counts_count_every_skip() -> None:
    report = InvokeAIImportReport(root="r")
    n = MAX_SKIPPED_DETAILS + 2500
    for i in range(n):
        report.skip("image", f"{i}.png", f"missing file: /x/{i}.png")
    report.skip("board", "b", "unreadable row: bad")
    assert len(report.skipped) == MAX_SKIPPED_DETAILS  # details are capped ...
    assert report.skipped_reasons["image", "missing file"] == n  # ... counts are not
    assert report.skipped_counts["image"] == n
    assert f"skipped image: missing file ({n})" in str(report)
    assert report.no_image_files


@pytest.mark.parametrize("when", ["now", "later"])
def test_index_before_exit_or_later(tmp_path: Path, when: str) -> None:
    """The command builds the search index before its process ends (no thread would outlive
    it); ``--index later`` leaves it to the next catalog that opens the file, which starts
    its background indexer."""
    import duckdb

    ia = make_invokeai_root(tmp_path / "invokeai")
    for i in range(3):
        ia.add_image(metadata={"positive_prompt": f"a lighthouse {i}"})
    studio_root = tmp_path / "studio"
    args = ["import-invokeai", str(ia.root), "--root", str(studio_root), "--quiet",
            "--index", when]  # fmt: skip
    assert main(args) == 0
    with duckdb.connect(str(studio_root / "catalog.duckdb")) as raw:  # no indexer of ours
        mark = raw.execute("SELECT indexed_upto FROM search_state").fetchall()[0][0]
        top = raw.execute("SELECT max(image_id) FROM images").fetchall()[0][0]
    assert (mark == top) == (when == "now")
    with Catalog(studio_root) as cat:
        assert cat.indexer.wait(60) and cat.indexer.lag() == 0
        assert cat.images.list(search="lighthouse", with_total=True).total == 3
