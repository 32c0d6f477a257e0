"""
The hook's arguments checked before any request: queries, referral ids, JSON Patch, new referrals.

Every refusal is a :class:`~.errors.PartnerCenterConfigError` that names the argument and the
accepted form, so a wrong call fails in the DAG's code, not at the API. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from airflow_provider_partner import odata
from airflow_provider_partner.errors import PartnerCenterConfigError

__all__ = ["MAX_PAGE_SIZE", "list_params", "new_referral", "patch_operations", "query_string", "referral_url"]

#: Largest ``$top`` the API documents for one page; larger caps are applied client-side only.
MAX_PAGE_SIZE = 100
_PATCH_OPS = frozenset({"replace", "add"})
_QUERY_SAFE = "$'(),/:@"
_NEW_REFERRAL_FIELDS = ("type", "customerProfile", "consent", "details")


def query_string(params: Mapping[str, str]) -> str:
    """``params`` as a query: spaces as %20 (not "+"), quotes and parentheses kept, as in the docs."""
    return "&".join(f"{quote(k, safe='$')}={quote(v, safe=_QUERY_SAFE)}" for k, v in params.items())


def list_params(
    filter: str | None,
    orderby: str | None,
    select: str | Iterable[str] | None,
    top: int | None,
) -> dict[str, str]:
    """
    The OData query of a referrals listing (see ``PartnerCenterHook.iter_pages`` for the arguments).

    ``$top`` is sent only up to :data:`MAX_PAGE_SIZE`; a larger ``top`` is a client-side cap.
    """
    params: dict[str, str] = {}
    if filter is not None:
        if not isinstance(filter, str) or not filter.strip():
            raise PartnerCenterConfigError(f"filter must be a non-empty OData expression, got {filter!r}.")
        params["$filter"] = filter.strip()
    if orderby is not None:
        params["$orderby"] = odata.validate_orderby(orderby)
    if select is not None:
        params["$select"] = odata.select(select)
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise PartnerCenterConfigError(f"top must be a non-negative integer or None, got {top!r}.")
        if top <= MAX_PAGE_SIZE:
            params["$top"] = str(top)
    return params


def referral_url(referrals_url: str, referral_id: str) -> str:
    """
    The URL of one referral under the collection's URL, its id quoted as one path segment.

    :param referrals_url: the configured referrals endpoint.
    :param referral_id: the referral ``id``.
    """
    if not isinstance(referral_id, str) or not referral_id.strip():
        raise PartnerCenterConfigError(f"referral_id must be a non-empty string, got {referral_id!r}.")
    return f"{referrals_url}/{quote(referral_id.strip(), safe='')}"


def new_referral(body: Mapping[str, Any]) -> dict[str, Any]:
    """
    The body of ``create_referral`` as sent, once it has the fields the API requires.

    :param body: the new referral.
    """
    if not isinstance(body, Mapping):
        raise PartnerCenterConfigError(f"create_referral needs a dict body, got {type(body).__name__}.")
    missing = [key for key in _NEW_REFERRAL_FIELDS if key not in body]
    if missing:
        raise PartnerCenterConfigError(
            f"create_referral body lacks required field(s) {missing} (the API refuses it without them)."
        )
    return dict(body)


def patch_operations(operations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """
    The JSON Patch of ``update_referral`` as sent: ``replace`` and ``add`` only, each with a path and a value.

    :param operations: the caller's operations.
    """
    if (
        isinstance(operations, (str, bytes, Mapping))
        or not isinstance(operations, Sequence)
        or not operations
    ):
        raise PartnerCenterConfigError(
            "operations must be a non-empty list of JSON Patch operations, e.g. "
            '[{"op": "replace", "path": "/status", "value": "Active"}].'
        )
    ops: list[dict[str, Any]] = []
    for index, op in enumerate(operations):
        if not isinstance(op, Mapping):
            raise PartnerCenterConfigError(f"JSON Patch operation {index} must be a dict, got {op!r}.")
        if op.get("op") not in _PATCH_OPS:
            raise PartnerCenterConfigError(
                f"JSON Patch operation {index} has op {op.get('op')!r}; the Referrals API supports only "
                f"{sorted(_PATCH_OPS)}."
            )
        path = op.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise PartnerCenterConfigError(
                f"JSON Patch operation {index} needs a path starting with '/', got {path!r}."
            )
        if "value" not in op:
            raise PartnerCenterConfigError(f"JSON Patch operation {index} ({op['op']} {path}) has no value.")
        ops.append(dict(op))
    return ops
