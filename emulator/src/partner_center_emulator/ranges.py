"""
The rows a ``$filter`` can match, from its ``createdDateTime`` bounds: the store's one index.

The store keeps referrals in the order they were created (generated oldest first, new ones
appended at the clock's next tick), so the referrals that a filter's top-level
``createdDateTime`` bounds allow are one contiguous run of the store, found by bisection instead
of a scan of every referral. Balanced slices ask exactly such queries: a count probe per cut
and a first page per slice, each over the whole store. The real service answers them from its
database's indexes; a scan in the emulator cost ~100 ms of its one GIL per query at 200,000
referrals, which the clients' benchmarks would have measured as the client's time.

The filter is still evaluated on that run, unless it is nothing but those bounds
(:attr:`Bounds.exact`), so the answer is the same as a scan's.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from odata_query import ast

from partner_center_emulator.clock import format_ticks, parse_to_ticks

__all__ = ["INDEXED_FIELD", "Bounds", "created_bounds", "rows_within"]

#: The field the store's order follows.
INDEXED_FIELD = "createdDateTime"

# An operator with the literal on the left, seen from the property's side.
_FLIPPED: dict[type[Any], type[Any]] = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}


@dataclass(frozen=True)
class Bounds:
    """
    The ``createdDateTime`` values a filter allows at most (formatted as the records hold them).

    :param low: the least value allowed, ``None`` for no lower bound.
    :param low_inclusive: whether ``low`` itself is allowed.
    :param high: the greatest value allowed, ``None`` for no upper bound.
    :param high_inclusive: whether ``high`` itself is allowed.
    :param exact: the filter is these bounds and nothing else: every row within them matches.
    """

    low: str | None = None
    low_inclusive: bool = True
    high: str | None = None
    high_inclusive: bool = True
    exact: bool = True

    def above(self, value: str, inclusive: bool) -> Bounds:
        """These bounds with the lower one raised to ``value`` (when that is tighter)."""
        if self.low is None or value > self.low or (value == self.low and not inclusive):
            return replace(self, low=value, low_inclusive=inclusive)
        return self

    def below(self, value: str, inclusive: bool) -> Bounds:
        """These bounds with the upper one lowered to ``value`` (when that is tighter)."""
        if self.high is None or value < self.high or (value == self.high and not inclusive):
            return replace(self, high=value, high_inclusive=inclusive)
        return self


def _terms(tree: ast._Node) -> list[ast._Node]:
    """The operands of the filter's top-level ``and`` chain (the filter itself if it is none)."""
    terms: list[ast._Node] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            stack.extend((node.right, node.left))
        else:
            terms.append(node)
    return terms


def _bound(term: ast._Node) -> tuple[type[Any], str] | None:
    """``(operator, value)`` when ``term`` compares createdDateTime with a date-time literal."""
    if not isinstance(term, ast.Compare):
        return None
    kind: type[Any] = type(term.comparator)
    left, right = term.left, term.right
    if isinstance(left, (ast.DateTime, ast.Date)) and isinstance(right, ast.Identifier):
        left, right, kind = right, left, _FLIPPED.get(kind, kind)
    if not (isinstance(left, ast.Identifier) and left.name == INDEXED_FIELD):
        return None
    if not isinstance(right, (ast.DateTime, ast.Date)) or kind not in (ast.Eq, *_FLIPPED):
        return None
    # The compiler normalises the literal the same way: compared as the stored strings are.
    return kind, format_ticks(parse_to_ticks(right.val))


def created_bounds(tree: ast._Node) -> Bounds | None:
    """
    The ``createdDateTime`` bounds of a parsed filter that the filter compiled from it implies.

    :param tree: the filter's AST, already compiled (so its literals are valid).
    :return: the bounds, or ``None`` when no top-level ``and`` term bounds ``createdDateTime``.
    """
    bounds, found = Bounds(), False
    for term in _terms(tree):
        bound = _bound(term)
        if bound is None:
            bounds = replace(bounds, exact=False)
            continue
        kind, value = bound
        found = True
        if kind in (ast.Gt, ast.GtE, ast.Eq):
            bounds = bounds.above(value, inclusive=kind is not ast.Gt)
        if kind in (ast.Lt, ast.LtE, ast.Eq):
            bounds = bounds.below(value, inclusive=kind is not ast.Lt)
    return bounds if found else None


def rows_within(rows: Sequence[dict[str, Any]], bounds: Bounds) -> Sequence[dict[str, Any]]:
    """
    The run of ``rows`` (ordered by ``createdDateTime``, every value a string) inside ``bounds``.

    :param rows: the store's records, in its order.
    :param bounds: from :func:`created_bounds`.
    """

    def key(record: dict[str, Any]) -> str:
        return str(record[INDEXED_FIELD])

    start, end = 0, len(rows)
    if bounds.low is not None:
        find = bisect.bisect_left if bounds.low_inclusive else bisect.bisect_right
        start = find(rows, bounds.low, key=key)
    if bounds.high is not None:
        find = bisect.bisect_right if bounds.high_inclusive else bisect.bisect_left
        end = find(rows, bounds.high, key=key)
    return rows[start : max(start, end)]
