"""String nodes with InvokeAI's ids and fields: join, replace, split, split into pos/neg."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from invoke_nb.nodes.base import InputField, Node, Output, OutputField, UIHint, node, output
from invoke_nb.nodes.primitives import StringOutput

if TYPE_CHECKING:
    from invoke_nb.nodes.context import Context

__all__ = ["String2Output", "StringPosNegOutput", "split_negative"]


@output("string_pos_neg_output")
class StringPosNegOutput(Output):
    """A prompt split into its positive and negative parts."""

    positive_string: str = OutputField(description="Positive string")
    negative_string: str = OutputField(description="Negative string")


@output("string_2_output")
class String2Output(Output):
    """Two strings."""

    string_1: str = OutputField(description="string 1")
    string_2: str = OutputField(description="string 2")


def split_negative(text: str) -> tuple[str, str]:
    """Split ``text`` into (positive, negative): text inside ``[...]`` is negative.

    Brackets may nest; a backslash escapes the next bracket (the backslash stays in the
    text). Each opening bracket adds a space to the negative part and each closing one is
    dropped, as InvokeAI does, so words from two bracket groups do not run together.
    Unlike InvokeAI, an unmatched ``]`` does not make the next bracket group positive.
    """
    positive: list[str] = []
    negative: list[str] = []
    depth = 0
    escaped = False
    for ch in text:
        if ch == "[" and not escaped:
            negative.append(" ")
            depth += 1
        elif ch == "]" and not escaped:
            depth = max(0, depth - 1)  # an unmatched "]" is dropped, not counted
        elif depth > 0:
            negative.append(ch)
        else:
            positive.append(ch)
        escaped = ch == "\\" and not escaped
    return "".join(positive), "".join(negative)


@node(
    "string_split_neg",
    title="String Split Negative",
    category="strings",
    tags=["string", "split", "negative"],
    version="1.0.1",
)
class StringSplitNegNode(Node):
    """Splits a prompt: text inside [] goes to the negative string, the rest to the positive."""

    string: str = InputField(default="", description="String to split", ui_hint=UIHint.TEXTAREA)

    def invoke(self, ctx: Context) -> StringPosNegOutput:
        pos, neg = split_negative(self.string or "")
        return StringPosNegOutput(positive_string=pos, negative_string=neg)


@node(
    "string_split",
    title="String Split",
    category="strings",
    tags=["string", "split"],
    version="1.0.1",
)
class StringSplitNode(Node):
    """Splits a string in two at the first delimiter, which is removed.

    A blank delimiter splits at the first run of whitespace.
    """

    string: str = InputField(default="", description="String to split", ui_hint=UIHint.TEXTAREA)
    delimiter: str = InputField(
        default="", description="Delimiter to spilt with. blank will split on the first whitespace"
    )

    def invoke(self, ctx: Context) -> String2Output:
        parts = self.string.split(self.delimiter or None, 1)
        first = parts[0] if parts else ""
        second = parts[1] if len(parts) == 2 else ""
        return String2Output(string_1=first, string_2=second)


@node(
    "string_join", title="String Join", category="strings", tags=["string", "join"], version="1.0.1"
)
class StringJoinNode(Node):
    """Joins string_left and string_right."""

    string_left: str = InputField(default="", description="String Left", ui_hint=UIHint.TEXTAREA)
    string_right: str = InputField(default="", description="String Right", ui_hint=UIHint.TEXTAREA)

    def invoke(self, ctx: Context) -> StringOutput:
        return StringOutput(value=(self.string_left or "") + (self.string_right or ""))


@node(
    "string_join_three",
    title="String Join Three",
    category="strings",
    tags=["string", "join"],
    version="1.0.1",
)
class StringJoinThreeNode(Node):
    """Joins string_left, string_middle and string_right."""

    string_left: str = InputField(default="", description="String Left", ui_hint=UIHint.TEXTAREA)
    string_middle: str = InputField(
        default="", description="String Middle", ui_hint=UIHint.TEXTAREA
    )
    string_right: str = InputField(default="", description="String Right", ui_hint=UIHint.TEXTAREA)

    def invoke(self, ctx: Context) -> StringOutput:
        parts = (self.string_left, self.string_middle, self.string_right)
        return StringOutput(value="".join(p or "" for p in parts))


@node(
    "string_replace",
    title="String Replace",
    category="strings",
    tags=["string", "replace", "regex"],
    version="1.0.1",
)
class StringReplaceNode(Node):
    """Replaces every match of search_string: case-insensitive text, or a regex."""

    string: str = InputField(default="", description="String to work on", ui_hint=UIHint.TEXTAREA)
    search_string: str = InputField(
        default="", description="String to search for", ui_hint=UIHint.TEXTAREA
    )
    replace_string: str = InputField(
        default="", description="String to replace the search", ui_hint=UIHint.TEXTAREA
    )
    use_regex: bool = InputField(
        default=False,
        description="Use search string as a regex expression (non regex is case insensitive)",
    )

    def invoke(self, ctx: Context) -> StringOutput:
        text = self.string or ""
        search = self.search_string or ""
        replacement = self.replace_string or ""
        if not search:
            return StringOutput(value=text)
        if not self.use_regex:
            # a literal replacement: no backslash escapes in the replacement either
            pattern = re.compile(re.escape(search), re.IGNORECASE)
            return StringOutput(value=pattern.sub(lambda _m: replacement, text))
        try:
            return StringOutput(value=re.sub(search, replacement, text))
        except re.error as e:
            raise ValueError(
                f"node {self.id!r} (string_replace): bad regex or replacement "
                f"({search!r} -> {replacement!r}): {e}"
            ) from e
