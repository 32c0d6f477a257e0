"""Build OData query options for the Referrals API safely: pure functions, no IO.

Every function returns plain strings, so a raw ``$filter`` written by hand (or rendered
from a Jinja template in a DAG) can be mixed freely with built expressions::

    from airflow_provider_partner import odata

    odata.and_(
        odata.eq("direction", "Incoming"),
        odata.or_(odata.eq("status", "New"), "substatus eq 'Pending'"),
        odata.window("updatedDateTime", start, end),
    )
    # direction eq 'Incoming' and (status eq 'New' or substatus eq 'Pending') and
    # updatedDateTime ge 2026-11-01T00:00:00Z and updatedDateTime lt 2026-11-02T00:00:00Z

Values always go through :func:`literal`, which quotes strings (``'O''Brien'``) and renders
datetimes as UTC literals, so user data can never change the structure of a filter.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from airflow_provider_partner.instants import Instant
from airflow_provider_partner.odata.scan import check_balanced, is_wrapped, segments, top_level_keywords

__all__ = [
    "ORDERBY_FIELDS",
    "and_",
    "any_",
    "bind",
    "check_balanced",
    "datetime_literal",
    "eq",
    "ge",
    "gt",
    "le",
    "literal",
    "lt",
    "ne",
    "not_",
    "or_",
    "orderby",
    "select",
    "team_has_email",
    "validate_orderby",
    "window",
]

#: The only fields the Referrals API documents for ``$orderby``.
ORDERBY_FIELDS: tuple[str, ...] = ("createdDateTime", "updatedDateTime")

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_FIELD_PATH = re.compile(rf"{_IDENTIFIER}(?:/{_IDENTIFIER})*")
_TOP_LEVEL_FIELD = re.compile(_IDENTIFIER)
_ORDERBY_ITEM = re.compile(rf"\s*({_IDENTIFIER})(?:\s+(asc|desc))?\s*", re.IGNORECASE)

LiteralValue = str | int | float | Decimal | bool | dt.datetime | Instant | uuid.UUID | enum.Enum | None


def datetime_literal(value: dt.datetime | Instant) -> str:
    """
    Render an aware datetime (or an :class:`~airflow_provider_partner.instants.Instant`) as the UTC
    literal the API compares against.

    Fractions are kept (the API stores 7 fractional digits, so dropping them would move a window
    boundary): see :meth:`~airflow_provider_partner.instants.Instant.literal`.

    :param value: a timezone-aware datetime (``pendulum.DateTime`` works too) or an instant.
    """
    if isinstance(value, Instant):
        return value.literal()
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"OData datetime literal needs a timezone-aware datetime, got naive {value.isoformat()}; "
            "attach a timezone (e.g. pendulum.datetime(..., tz='UTC'))."
        )
    return Instant.from_datetime(value).literal()


def literal(value: LiteralValue) -> str:
    """
    Render a Python value as an OData literal.

    :param value: ``str`` (single-quoted, inner quotes doubled), ``bool``, ``int``,
        ``float``/``Decimal`` (finite only), aware ``datetime`` or ``Instant`` (UTC literal), ``UUID``
        (quoted: the API's ids are strings), an ``Enum`` (its value) or ``None`` (``null``).
    """
    if value is None:
        return "null"
    if isinstance(value, enum.Enum):
        return literal(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"OData has no literal for the float {value!r}.")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"OData has no literal for the decimal {value!r}.")
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime | Instant):
        return datetime_literal(value)
    raise TypeError(
        f"Cannot render {type(value).__name__} as an OData literal; "
        "pass a str, number, bool, None, UUID, Enum or timezone-aware datetime."
    )


def _field(path: str) -> str:
    if not isinstance(path, str) or not _FIELD_PATH.fullmatch(path):
        raise ValueError(
            f"Invalid OData field path {path!r}: use names separated by '/', "
            "e.g. 'status' or 'customerProfile/address/country'."
        )
    return path


def _compare(operator: str) -> Callable[[str, LiteralValue], str]:
    def build(field: str, value: LiteralValue) -> str:
        return f"{_field(field)} {operator} {literal(value)}"

    build.__name__ = operator
    build.__qualname__ = operator
    build.__doc__ = (
        f"Return ``<field> {operator} <value>``, the value rendered with :func:`literal`.\n\n"
        ":param field: a field path such as ``status`` or ``customerProfile/address/country``.\n"
        ":param value: the value to compare with."
    )
    return build


eq = _compare("eq")
ne = _compare("ne")
gt = _compare("gt")
ge = _compare("ge")
lt = _compare("lt")
le = _compare("le")


_PLACEHOLDER = re.compile(r"(?<![\w/:.])[:]([A-Za-z_][A-Za-z0-9_]*)")


def bind(template: str, values: Mapping[str, LiteralValue]) -> str:
    """
    Put run-time values into a filter safely: each ``:name`` becomes ``literal(values[name])``.

    ``filter="country eq :country and type eq :kind"`` with ``{"country": "DK' or 'a' eq 'a", ...}``
    compares ``country`` with that whole string: a value can never change the filter's structure.
    Placeholders inside string literals are left alone, and so is a lambda's ``t:t/email``.

    :param template: the filter with ``:name`` placeholders.
    :param values: a value for every placeholder (each rendered with :func:`literal`).
    :raises ValueError: a placeholder without a value, or a value no placeholder uses (a typo).
    """
    check_balanced(template)
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"$filter placeholder :{name} has no value; filter_params has {sorted(values)}.")
        used.add(name)
        return literal(values[name])

    bound = "".join(
        text if literal_run else _PLACEHOLDER.sub(fill, text) for _, text, literal_run in segments(template)
    )
    unused = sorted(set(values) - used)
    if unused:
        raise ValueError(f"filter_params {unused} match no :name placeholder in $filter {template!r}.")
    return bound


def _clean(exprs: Iterable[str | None], function: str) -> list[str]:
    parts = [check_balanced(e.strip()) for e in exprs if e is not None and e.strip()]
    if not parts:
        raise ValueError(f"odata.{function}() needs at least one non-empty expression.")
    return parts


def _group(expr: str, keyword: str) -> str:
    """Parenthesise ``expr`` unless it is safe to join with ``keyword`` as it stands."""
    if is_wrapped(expr):
        return expr
    # 'not' binds tighter than both, so only a different binary operator needs grouping. Inside
    # an 'and', a bare 'or' would bind the wrong way; inside an 'or' a bare 'and' is fine by
    # precedence, but parentheses make the intent visible to whoever reads the rendered filter.
    if top_level_keywords(expr) - {"not", keyword}:
        return f"({expr})"
    return expr


def and_(*exprs: str | None) -> str:
    """
    Join expressions with ``and``, parenthesising any that contain another operator.

    ``None`` and empty strings are skipped, so optional user filters compose directly:
    ``and_(window_filter, user_filter_or_none)``.
    """
    parts = _clean(exprs, "and_")
    return " and ".join(_group(p, "and") for p in parts)


def or_(*exprs: str | None) -> str:
    """Join expressions with ``or``, parenthesising any that contain another operator."""
    parts = _clean(exprs, "or_")
    return " or ".join(_group(p, "or") for p in parts)


def not_(expr: str) -> str:
    """Negate an expression: ``not (<expr>)``."""
    (part,) = _clean([expr], "not_")
    return f"not {part}" if is_wrapped(part) else f"not ({part})"


def any_(collection: str, condition: Callable[[str], str], variable: str = "t") -> str:
    """
    Build a lambda ``any`` over a collection, e.g. ``team/any(t:t/email eq 'a@b.com')``.

    :param collection: path of the collection, such as ``team`` or ``customerProfile/team``.
    :param condition: called with the lambda variable, returns the condition on one member,
        e.g. ``lambda t: odata.eq(f"{t}/email", email)``.
    :param variable: the lambda variable name.
    """
    if not _TOP_LEVEL_FIELD.fullmatch(variable):
        raise ValueError(f"Invalid lambda variable {variable!r}.")
    return f"{_field(collection)}/any({variable}:{condition(variable)})"


def team_has_email(email: str, collection: str = "team") -> str:
    """Match referrals whose team (or another member collection) has this e-mail address."""
    return any_(collection, lambda t: eq(f"{t}/email", email))


def window(field: str, start: dt.datetime | Instant, end: dt.datetime | Instant) -> str:
    """
    Return the half-open window ``<field> ge <start> and <field> lt <end>``.

    Consecutive windows that share a boundary never both match the same timestamp.

    :param field: the datetime field, usually ``updatedDateTime`` or ``createdDateTime``.
    :param start: inclusive lower bound (aware datetime or instant).
    :param end: exclusive upper bound (aware datetime or instant), after ``start``.
    """
    low, high = datetime_literal(start), datetime_literal(end)
    if _as_instant(end) <= _as_instant(start):
        raise ValueError(f"Empty OData window on {field}: start {low} is not before end {high}.")
    return f"{ge(field, start)} and {lt(field, end)}"


def _as_instant(value: dt.datetime | Instant) -> Instant:
    return value if isinstance(value, Instant) else Instant.from_datetime(value)


def orderby(field: str, descending: bool = False) -> str:
    """Return an ``$orderby`` clause for one of :data:`ORDERBY_FIELDS`."""
    return validate_orderby(f"{field} {'desc' if descending else 'asc'}")


def validate_orderby(value: str) -> str:
    """
    Check an ``$orderby`` value and return it normalised (``field asc|desc``, comma-separated).

    The Referrals API only documents ``createdDateTime`` and ``updatedDateTime``; anything
    else is refused here rather than by the server in the middle of a run.
    """
    items = []
    for raw in value.split(","):
        match = _ORDERBY_ITEM.fullmatch(raw)
        if not match:
            raise ValueError(
                f"Invalid $orderby item {raw.strip()!r} in {value!r}: expected '<field> [asc|desc]'."
            )
        name, direction = match.group(1), (match.group(2) or "asc").lower()
        if name not in ORDERBY_FIELDS:
            raise ValueError(
                f"$orderby field {name!r} is not supported by the Referrals API; "
                f"use one of {', '.join(ORDERBY_FIELDS)}."
            )
        items.append(f"{name} {direction}")
    return ",".join(items)


def select(fields: str | Iterable[str]) -> str:
    """
    Return a ``$select`` value from field names (a comma-separated string or an iterable).

    Only top-level fields can be selected; duplicates are dropped, order is kept.
    """
    names = fields.split(",") if isinstance(fields, str) else list(fields)
    cleaned: list[str] = []
    for name in (n.strip() for n in names):
        if not _TOP_LEVEL_FIELD.fullmatch(name):
            raise ValueError(f"Invalid $select field {name!r}: only top-level field names are allowed.")
        if name not in cleaned:
            cleaned.append(name)
    if not cleaned:
        raise ValueError("$select needs at least one field name.")
    return ",".join(cleaned)
