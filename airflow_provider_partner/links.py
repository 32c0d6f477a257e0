"""
Extra links from the operator's and the sensor's task instances to the referrals in Partner Center.

- **Partner Center referrals** (operator and sensor): the Referrals workspace of the Partner
  Center dashboard, :data:`REFERRALS_WORKSPACE_URL`, the address Microsoft's own documentation
  links to for the referrals (leads) a partner receives.
- **Newest referral** (sensor): the newest referral the sensor returned, at
  :func:`referral_url`. Microsoft documents no per-referral dashboard address; this one is the
  workspace URL followed by the referral id (see ``docs/lineage.md``), so a follow-up can show
  the same address with :func:`referral_url`.

As with Airflow's own links, the task computes each URL when it finishes (``get_link`` runs in the
worker, with the operator that ran) and Airflow stores it in XCom under the link's ``xcom_key``;
the UI and the REST API read it back from there (``SerializedBaseOperator.get_extra_links``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_provider_partner.instants import sort_key

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "REFERRALS_WORKSPACE_URL",
    "NewestReferralLink",
    "ReferralsWorkspaceLink",
    "newest_referral_id",
    "referral_url",
]

#: The Partner Center dashboard's Referrals workspace (its leads view).
REFERRALS_WORKSPACE_URL = "https://partner.microsoft.com/dashboard/referrals/v2/leads"


def referral_url(referral_id: str) -> str:
    """
    Return the dashboard address of one referral.

    :param referral_id: the referral ``id``.
    """
    return f"{REFERRALS_WORKSPACE_URL}/{quote(str(referral_id), safe='')}"


def newest_referral_id(referrals: list[dict[str, Any]]) -> str | None:
    """
    Return the ``id`` of the newest referral (latest ``createdDateTime``, then ``id``), if any.

    :param referrals: referrals as the sensor returns them.
    """
    dated = [r for r in referrals if isinstance(r.get("id"), str)]
    if not dated:
        return None
    newest = max(dated, key=lambda r: (sort_key(r.get("createdDateTime")), r["id"]))
    return str(newest["id"])


class ReferralsWorkspaceLink(BaseOperatorLink):
    """The Referrals workspace of the Partner Center dashboard."""

    name = "Partner Center referrals"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the workspace URL (the same for every run)."""
        return REFERRALS_WORKSPACE_URL


class NewestReferralLink(BaseOperatorLink):
    """The newest referral a sensor run returned (empty when it returned none)."""

    name = "Newest referral"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the referral's dashboard URL, or ``""`` (no link) when the run found none."""
        referral_id = getattr(operator, "newest_referral_id", None)
        return referral_url(referral_id) if referral_id else ""
