"""
Reading ``$filter`` text as OData does: string literals (with doubled quotes), parentheses and the
``and``/``or``/``not`` keywords outside them. Pure functions, used by the builders in
:mod:`airflow_provider_partner.odata` to combine expressions without changing their meaning.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["check_balanced", "is_wrapped", "segments", "top_level_keywords"]


def top_level_keywords(expr: str) -> set[str]:
    """Return the lower-cased ``and``/``or``/``not`` keywords outside quotes and parentheses."""
    found: set[str] = set()
    depth = 0
    in_string = False
    i = 0
    n = len(expr)
    while i < n:
        char = expr[i]
        if in_string:
            if char == "'":
                # A doubled quote is an escaped quote inside the literal.
                if i + 1 < n and expr[i + 1] == "'":
                    i += 1
                else:
                    in_string = False
        elif char == "'":
            in_string = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char.isalpha() and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_/")):
            j = i
            while j < n and (expr[j].isalnum() or expr[j] == "_"):
                j += 1
            word = expr[i:j].lower()
            if word in {"and", "or", "not"}:
                found.add(word)
            i = j
            continue
        i += 1
    return found


def is_wrapped(expr: str) -> bool:
    """Whether the whole expression is one parenthesised group, e.g. ``(a or b)``."""
    if not (expr.startswith("(") and expr.endswith(")")):
        return False
    return not top_level_keywords(expr) and _balanced_inside(expr[1:-1])


def _balanced_inside(inner: str) -> bool:
    depth = 0
    in_string = False
    for char in inner:
        if in_string:
            # A doubled quote toggles twice, which leaves the state right.
            in_string = char != "'"
        elif char == "'":
            in_string = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
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
    for start, text, literal_run in segments(expr):
        if literal_run is None:
            raise ValueError(
                f"The string literal opened at character {start + 1} of $filter {expr!r} is never "
                "closed; quote values with odata.literal() or bind them with odata.bind()."
            )
        if literal_run:
            continue
        for offset, char in enumerate(text):
            if char == "(":
                open_at.append(start + offset)
            elif char == ")":
                if not open_at:
                    raise ValueError(
                        f"The ')' at character {start + offset + 1} of $filter {expr!r} closes nothing."
                    )
                open_at.pop()
    if open_at:
        raise ValueError(f"The '(' at character {open_at[-1] + 1} of $filter {expr!r} is never closed.")
    return expr
