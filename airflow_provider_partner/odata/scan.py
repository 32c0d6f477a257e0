"""
Reading ``$filter`` text as OData does: string literals (with doubled quotes), parentheses and the
``and``/``or``/``not`` keywords outside them. Pure functions, used by the builders in
:mod:`airflow_provider_partner.odata` to combine expressions without changing their meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["check_balanced", "is_wrapped", "segments", "top_level_keywords"]


_KEYWORDS = frozenset({"and", "or", "not"})
# A word starts after anything but a name character or a path separator ("a/and" is a field).
_WORD = re.compile(r"(?<![\w/])[^\W\d]\w*")


def _structure(expr: str) -> Iterator[tuple[int, str]]:
    """``(position, char)`` of every character outside string literals."""
    for start, text, literal in segments(expr):
        if literal is False:
            yield from enumerate(text, start)


def _top_level(expr: str) -> str:
    """``expr`` with its string literals and everything inside parentheses blanked (same length)."""
    shown = [" "] * len(expr)
    depth = 0
    for position, char in _structure(expr):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            shown[position] = char
    return "".join(shown)


def top_level_keywords(expr: str) -> set[str]:
    """Return the lower-cased ``and``/``or``/``not`` keywords outside quotes and parentheses."""
    return {word.lower() for word in _WORD.findall(_top_level(expr))} & _KEYWORDS


def is_wrapped(expr: str) -> bool:
    """Whether the whole expression is one parenthesised group, e.g. ``(a or b)``."""
    if not (expr.startswith("(") and expr.endswith(")")):
        return False
    depth = 0
    for position, char in _structure(expr):
        if char in "()":
            depth += 1 if char == "(" else -1
            # The first '(' must close at the very end: "(a) or (b)" is two groups.
            if depth == 0 and position < len(expr) - 1:
                return False
    return depth == 0


def segments(expr: str) -> Iterator[tuple[int, str, bool | None]]:
    """
    Yield ``(start, text, literal)`` runs of ``expr``: ``literal`` is ``False`` outside string
    literals, ``True`` for a closed literal, ``None`` for one never closed (it runs to the end).
    """
    start = i = 0
    n = len(expr)
    while i < n:
        if expr[i] != "'":
            i += 1
            continue
        if i > start:
            yield start, expr[start:i], False
        j = i + 1
        while j < n:
            if expr[j] != "'":
                j += 1
            elif j + 1 < n and expr[j + 1] == "'":  # a doubled quote is an escaped quote
                j += 2
            else:
                break
        yield i, expr[i : j + 1], True if j < n else None
        start = i = j + 1
    if start < n:
        yield start, expr[start:], False


def check_balanced(expr: str) -> str:
    """
    Return ``expr`` if its parentheses balance and its string literals close; else raise.

    A filter that does not balance is never valid OData, and wrapping it in parentheses could make
    it valid with another meaning (``x eq 'a') or ('b'`` would escape an ``and``), so it is
    refused before it is combined with anything.

    :param expr: a ``$filter`` expression.
    :raises ValueError: naming the character position (1-based) of the first problem.
    """
    open_at: list[int] = []
    for start, text, literal in segments(expr):
        if literal is None:
            raise ValueError(
                f"The string literal opened at character {start + 1} of $filter {expr!r} is never "
                "closed; quote values with odata.literal() or bind them with odata.bind()."
            )
        for position, char in enumerate(text if literal is False else "", start):
            if char == "(":
                open_at.append(position)
            elif char == ")":
                if not open_at:
                    raise ValueError(
                        f"The ')' at character {position + 1} of $filter {expr!r} closes nothing."
                    )
                open_at.pop()
    if open_at:
        raise ValueError(f"The '(' at character {open_at[-1] + 1} of $filter {expr!r} is never closed.")
    return expr
