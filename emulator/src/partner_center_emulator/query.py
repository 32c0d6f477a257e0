"""
OData query options of the list endpoint: ``$filter`` compiled once into a Python predicate.

``odata_query`` parses the text into an AST; :func:`compile_filter` walks that AST once and
returns nested closures over the referral dicts, so evaluating a filter over 200k referrals
costs a few function calls per record and no parsing.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

from partner_center_emulator.clock import format_ticks, parse_to_ticks
from partner_center_emulator.enums import DATETIME_PATHS, FIELDS

Record = dict[str, Any]
Env = dict[str, Any]
Getter = Callable[[Record, Env], Any]
Predicate = Callable[[Record, Env], bool]

ORDERBY_FIELDS = ("createdDateTime", "updatedDateTime")

# Limits of what one $filter may cost. The service's limits are undocumented; these follow the
# defaults of ASP.NET OData (the service is published through Swashbuckle.OData): MaxNodeCount
# 100 and MaxAnyAllExpressionDepth 1, plus a length bound checked before anything is parsed.
# Within them, compiling and evaluating a filter is linear in its size, never recursive beyond
# 100 frames, and never a 500 (RecursionError) nor minutes of CPU (nested any() multiplies).
#: Longest $filter text accepted, in characters.
MAX_FILTER_LENGTH = 2048
#: Most AST nodes (operators, properties, literals, lambdas) in one $filter.
MAX_FILTER_NODES = 100
#: Deepest nesting of any()/all() inside one another.
MAX_LAMBDA_DEPTH = 1
SUPPORTED_OPTIONS = frozenset({"$filter", "$orderby", "$select", "$top", "$skip", "$count", "$skiptoken"})


class ODataError(ValueError):
    """A query the emulator refuses: answered 400 with ``{"error": {"code", "message"}}``."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Query:
    """The parsed query options of one list request."""

    filter: str | None = None
    orderby: str | None = None
    select: str | None = None
    top: int | None = None
    skip: int = 0
    count: bool = True

    def to_json(self) -> dict[str, Any]:
        """The options as a small JSON object (carried inside skiptokens)."""
        return {
            "filter": self.filter,
            "orderby": self.orderby,
            "select": self.select,
            "top": self.top,
            "skip": self.skip,
            "count": self.count,
        }


def _order(left: Any, right: Any, compare: Callable[[Any, Any], bool]) -> bool:
    # OData: an ordering comparison with null, or across types, is false (never an error at run time).
    if left is None or right is None or type(left) is not type(right):
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return compare(left, right)
        return False
    return bool(compare(left, right))


_COMPARATORS: dict[type[ast._Comparator], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_OPERATOR_NAMES = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}


class _Compiler:
    """Turns one filter AST into closures; raises :class:`ODataError` for what it cannot serve."""

    def __init__(self) -> None:
        self.variables: set[str] = set()

    def predicate(self, node: ast._Node) -> Predicate:
        if isinstance(node, ast.BoolOp):
            left, right = self.predicate(node.left), self.predicate(node.right)
            if isinstance(node.op, ast.And):
                return lambda r, env: left(r, env) and right(r, env)
            return lambda r, env: left(r, env) or right(r, env)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.predicate(node.operand)
            return lambda r, env: not inner(r, env)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.CollectionLambda):
            return self._lambda(node)
        if isinstance(node, ast.Call):
            raise ODataError(
                f"The function '{node.func.name}' is not supported in $filter; "
                "use eq, ne, gt, ge, lt, le, and, or, not and any()."
            )
        if isinstance(node, ast.Boolean):
            value = node.val.lower() == "true"
            return lambda r, env: value
        raise ODataError(f"$filter must be a boolean expression; {type(node).__name__} is not one.")

    def _compare(self, node: ast.Compare) -> Predicate:
        kind = type(node.comparator)
        if kind not in _COMPARATORS:
            raise ODataError(
                f"The operator '{type(node.comparator).__name__.lower()}' is not supported in $filter; "
                "use eq, ne, gt, ge, lt or le."
            )
        compare = _COMPARATORS[kind]
        left_node, right_node = node.left, node.right
        if isinstance(left_node, ast._Literal) and not isinstance(right_node, ast._Literal):
            # "2026-01-01T00:00:00Z lt createdDateTime": put the property on the left.
            left_node, right_node = right_node, left_node
            compare = {
                operator.lt: operator.gt,
                operator.gt: operator.lt,
                operator.le: operator.ge,
                operator.ge: operator.le,
            }.get(compare, compare)
        path = self._path(left_node)
        getter = self.getter(left_node)
        if isinstance(right_node, ast._Literal):
            value = self.literal(right_node, path, _OPERATOR_NAMES[kind])
            if compare in (operator.eq, operator.ne):
                return lambda r, env: compare(getter(r, env), value)
            return lambda r, env: _order(getter(r, env), value, compare)
        other = self.getter(right_node)
        if compare in (operator.eq, operator.ne):
            return lambda r, env: compare(getter(r, env), other(r, env))
        return lambda r, env: _order(getter(r, env), other(r, env), compare)

    def _lambda(self, node: ast.CollectionLambda) -> Predicate:
        owner = self.getter(node.owner)
        is_any = isinstance(node.operator, ast.Any)
        if node.lambda_ is None:
            if not is_any:
                raise ODataError("all() needs a lambda expression, e.g. team/all(t:t/email ne 'x')")
            return lambda r, env: bool(owner(r, env))
        name = node.lambda_.identifier.name
        self.variables.add(name)
        body = self.predicate(node.lambda_.expression)
        self.variables.discard(name)

        def evaluate(r: Record, env: Env) -> bool:
            items = owner(r, env) or ()
            if not isinstance(items, list):
                return False
            check = any if is_any else all
            return check(body(r, {**env, name: item}) for item in items)

        return evaluate

    def _path(self, node: ast._Node) -> tuple[str, ...]:
        if isinstance(node, ast.Identifier):
            return (node.name,)
        if isinstance(node, ast.Attribute):
            return (*self._path(node.owner), node.attr)
        return ()

    def getter(self, node: ast._Node) -> Getter:
        if isinstance(node, ast.Identifier):
            name = node.name
            if name in self.variables:
                return lambda r, env: env.get(name)
            if name not in FIELDS:
                raise ODataError(f"Could not find a property named '{name}' on type 'Referral'.")
            return lambda r, env: r.get(name)
        if isinstance(node, ast.Attribute):
            owner = self.getter(node.owner)
            attr = node.attr

            def get(r: Record, env: Env) -> Any:
                value = owner(r, env)
                return value.get(attr) if isinstance(value, dict) else None

            return get
        if isinstance(node, ast._Literal):
            value = self.literal(node, (), "eq")
            return lambda r, env: value
        raise ODataError(f"Unsupported expression in $filter: {type(node).__name__}.")

    def literal(self, node: ast._Node, path: tuple[str, ...], op: str) -> Any:
        field = "/".join(path)
        is_datetime = path in DATETIME_PATHS
        if isinstance(node, (ast.DateTime, ast.Date)):
            if path and not is_datetime:
                raise ODataError(f"'{field}' is not a DateTime property; compare it with a string or number.")
            try:
                return format_ticks(parse_to_ticks(node.val))
            except ValueError as err:
                raise ODataError(f"Invalid DateTime literal in $filter: {err}") from None
        if is_datetime and not isinstance(node, ast.Null):
            example = f"{field} {op} 2026-11-01T00:00:00Z"
            raise ODataError(
                f"'{field}' is a DateTime property: compare it with an unquoted ISO-8601 UTC "
                f"literal, e.g. {example}."
            )
        if isinstance(node, ast.Null):
            return None
        if isinstance(node, (ast.String, ast.GUID)):
            return node.val
        if isinstance(node, ast.Boolean):
            return node.val.lower() == "true"
        if isinstance(node, ast.Integer):
            return int(node.val)
        if isinstance(node, ast.Float):
            return float(node.val)
        raise ODataError(f"Unsupported literal in $filter: {type(node).__name__}.")


def _children(node: ast._Node) -> list[ast._Node]:
    found: list[ast._Node] = []
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        values = value if isinstance(value, (list, tuple)) else (value,)
        # Operator tokens (Eq, And, Not, Any: nodes without fields) cost nothing of their own and
        # are not counted; their expression (Compare, BoolOp, ...) is.
        found.extend(c for c in values if isinstance(c, ast._Node) and dataclasses.fields(c))
    return found


def check_filter_size(tree: ast._Node) -> None:
    """
    Refuse a parsed filter over :data:`MAX_FILTER_NODES` nodes or :data:`MAX_LAMBDA_DEPTH` lambdas deep.

    The walk is iterative and stops at the first node over a limit, so a tree of any depth is
    judged in bounded time and stack.

    :raises ODataError: naming the limit.
    """
    stack: list[tuple[ast._Node, int]] = [(tree, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_FILTER_NODES:
            raise ODataError(
                f"The $filter has more than {MAX_FILTER_NODES} nodes (operators, properties and "
                "literals); simplify it or split the query."
            )
        if isinstance(node, ast.CollectionLambda):
            depth += 1
            if depth > MAX_LAMBDA_DEPTH:
                raise ODataError(
                    f"The $filter nests any()/all() more than {MAX_LAMBDA_DEPTH} level deep; "
                    "use one level, e.g. team/any(t:t/email eq 'x')."
                )
        stack.extend((child, depth) for child in _children(node))


def parse_filter(text: str) -> ast._Node:
    """
    Parse a ``$filter`` expression into its AST, within the size limits.

    :param text: the ``$filter`` value as the client sent it (URL-decoded).
    :raises ODataError: a syntax error, or a filter over the size limits
        (:data:`MAX_FILTER_LENGTH`, :func:`check_filter_size`).
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise ODataError(
            f"The $filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH} are accepted. "
            "Simplify it or split the query."
        )
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except Exception as err:  # noqa: BLE001 - the parser raises several unrelated exception types
        detail = str(err) or type(err).__name__
        raise ODataError(f"Syntax error in $filter {text!r}: {detail}") from None
    if tree is None:
        raise ODataError(f"Syntax error in $filter {text!r}: empty expression")
    check_filter_size(tree)
    node: ast._Node = tree
    return node


def compile_tree(tree: ast._Node) -> Callable[[Record], bool]:
    """
    Compile a parsed ``$filter`` (see :func:`parse_filter`) into a predicate over referral dicts.

    :raises ODataError: an unknown property, an unsupported operator or function, a bad literal.
    """
    predicate = _Compiler().predicate(tree)
    empty: Env = {}
    return lambda record: bool(predicate(record, empty))


def compile_filter(text: str) -> Callable[[Record], bool]:
    """
    Compile a ``$filter`` expression into a predicate over referral dicts.

    :param text: the ``$filter`` value as the client sent it (URL-decoded).
    :raises ODataError: a syntax error, an unknown property, an unsupported operator or function,
        or a filter over the size limits (:data:`MAX_FILTER_LENGTH`, :func:`check_filter_size`).
    """
    return compile_tree(parse_filter(text))


def parse_orderby(text: str | None) -> tuple[str, bool] | None:
    """``"createdDateTime desc"`` -> ``("createdDateTime", True)``; ``None`` when absent."""
    if text is None or not text.strip():
        return None
    parts = text.split()
    if len(parts) > 2 or "," in text or parts[0] not in ORDERBY_FIELDS:
        raise ODataError(
            f"$orderby {text!r} is not supported: order by one of {', '.join(ORDERBY_FIELDS)}, "
            "optionally followed by asc or desc."
        )
    direction = parts[1].lower() if len(parts) == 2 else "asc"
    if direction not in ("asc", "desc"):
        raise ODataError(f"$orderby direction {parts[1]!r} is not supported: use asc or desc.")
    return parts[0], direction == "desc"


def parse_select(text: str | None) -> tuple[str, ...] | None:
    """``"id,status"`` -> ``("id", "status")``; unknown fields are a 400."""
    if text is None or not text.strip():
        return None
    fields = tuple(f.strip() for f in text.split(","))
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ODataError(f"$select names unknown properties: {', '.join(unknown)}.")
    return fields


def _non_negative(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit():
        raise ODataError(f"{name} must be a non-negative integer, got {text!r}.")
    return int(text)


def parse_query(params: dict[str, str]) -> Query:
    """
    Validate the query options of a list request (without ``$skiptoken``).

    :param params: the request's query parameters (first value of each).
    :raises ODataError: an unsupported option or a malformed value.
    """
    for name in params:
        if name.startswith("$") and name not in SUPPORTED_OPTIONS:
            raise ODataError(
                f"The query option '{name}' is not supported; supported: "
                f"{', '.join(sorted(SUPPORTED_OPTIONS))}."
            )
    count_text = params.get("$count", "true").strip().lower()
    if count_text not in ("true", "false"):
        raise ODataError(f"$count must be true or false, got {params['$count']!r}.")
    query = Query(
        filter=params.get("$filter") or None,
        orderby=params.get("$orderby") or None,
        select=params.get("$select") or None,
        top=_non_negative("$top", params.get("$top")),
        skip=_non_negative("$skip", params.get("$skip")) or 0,
        count=count_text == "true",
    )
    # $filter is compiled (and so validated) once, by the store, when the first page is cut.
    parse_orderby(query.orderby)
    parse_select(query.select)
    return query
