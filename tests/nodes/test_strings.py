"""String nodes: join, replace (text and regex), split, split into positive/negative."""

from __future__ import annotations

import pytest

from invoke_nb.nodes.strings import split_negative


def test_string_join(run):
    out = run("string_join", string_left="a photo of ", string_right="a cat")
    assert out.value == "a photo of a cat"
    assert type(out).output_type == "string_output"
    assert run("string_join").value == ""


def test_string_join_three(run):
    out = run("string_join_three", string_left="a", string_middle="-", string_right="b")
    assert out.value == "a-b"


def test_string_replace_plain_text_is_case_insensitive_and_literal(run):
    out = run(
        "string_replace", string="Cat and cat. CAT?", search_string="cat", replace_string="dog"
    )
    assert out.value == "dog and dog. dog?"
    # regex characters in the search string are plain text
    out = run("string_replace", string="a.b.c", search_string=".", replace_string="+")
    assert out.value == "a+b+c"
    # backslashes in the replacement are kept as written
    out = run("string_replace", string="a b", search_string=" ", replace_string=r"\n")
    assert out.value == r"a\nb"


def test_string_replace_regex_is_case_sensitive_with_groups(run):
    out = run(
        "string_replace",
        string="cat Cat 12 34",
        search_string=r"(\d)(\d)",
        replace_string=r"\2\1",
        use_regex=True,
    )
    assert out.value == "cat Cat 21 43"
    out = run(
        "string_replace", string="cat Cat", search_string="cat", replace_string="x", use_regex=True
    )
    assert out.value == "x Cat"


def test_string_replace_empty_search_returns_input(run):
    assert run("string_replace", string="abc", replace_string="x").value == "abc"


def test_string_replace_bad_regex_is_a_clear_error(run):
    with pytest.raises(ValueError, match=r"string_replace\): bad regex.*'\(unclosed'"):
        run("string_replace", string="x", search_string="(unclosed", use_regex=True)


@pytest.mark.parametrize(
    ("text", "delimiter", "first", "second"),
    [
        ("a,b,c", ",", "a", "b,c"),
        ("abc", ",", "abc", ""),
        ("a::b", "::", "a", "b"),
        ("hello big world", "", "hello", "big world"),
        ("", ",", "", ""),
        ("", "", "", ""),
    ],
)
def test_string_split(run, text, delimiter, first, second):
    out = run("string_split", string=text, delimiter=delimiter)
    assert (out.string_1, out.string_2) == (first, second)
    assert type(out).output_type == "string_2_output"


@pytest.mark.parametrize(
    ("text", "positive", "negative"),
    [
        ("a cat [blurry]", "a cat ", " blurry"),
        ("[ugly] cat [bad hands]", " cat ", " ugly bad hands"),
        ("a [b [c] d] e", "a  e", " b  c d"),
        (r"a \[b] c", r"a \[b c", ""),
        ("] [x]", " ", " x"),
        ("no brackets", "no brackets", ""),
    ],
)
def test_split_negative(text, positive, negative):
    assert split_negative(text) == (positive, negative)


def test_string_split_neg_node(run):
    out = run("string_split_neg", string="portrait [lowres]")
    assert (out.positive_string, out.negative_string) == ("portrait ", " lowres")
    assert type(out).output_type == "string_pos_neg_output"
