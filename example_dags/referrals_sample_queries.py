"""
The three sample requests of Microsoft's "Get a list of referrals" page, as operator tasks.

Each task returns its referrals through XCom (small results: ``top`` or a narrow filter), with
the ``$filter`` built by ``airflow_provider_partner.odata`` so quoting is always right.
Run it manually; it has no data interval, so windowing is off (``window_field=None``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_partner import odata
from airflow_provider_partner.operators.referrals import PartnerCenterReferralsOperator

# The seller whose active outgoing co-sell deals the third query lists.
SELLER_EMAIL = os.environ.get("PARTNER_CENTER_SELLER_EMAIL", "r2d2@contoso.com")
# Keep XCom small: the fields a person reads first (id/updatedDateTime are always added).
SUMMARY_FIELDS = ["name", "status", "substatus", "type", "direction", "createdDateTime", "customerProfile"]

with DAG(
    dag_id="referrals_sample_queries",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["partner_center", "example"],
):
    # [START top_inbound_cosell]
    # 1. The 10 most recent inbound co-sell opportunities (from Microsoft sellers or partners).
    PartnerCenterReferralsOperator(
        task_id="top_inbound_cosell",
        filter=odata.and_(odata.eq("type", "Shared"), odata.eq("direction", "Incoming")),
        orderby=odata.orderby("createdDateTime", descending=True),
        select=SUMMARY_FIELDS,
        top=10,
        window_field=None,
    )
    # [END top_inbound_cosell]

    # [START unanswered_inbound_leads]
    # 2. Inbound leads nobody has answered yet (substatus Pending), newest first.
    PartnerCenterReferralsOperator(
        task_id="unanswered_inbound_leads",
        filter=odata.and_(odata.eq("direction", "Incoming"), odata.eq("substatus", "Pending")),
        orderby=odata.orderby("createdDateTime", descending=True),
        select=SUMMARY_FIELDS,
        top=10,
        window_field=None,
    )
    # [END unanswered_inbound_leads]

    # [START active_outgoing_cosell_by_seller]
    # 3. Active outgoing co-sell deals whose team includes one seller.
    PartnerCenterReferralsOperator(
        task_id="active_outgoing_cosell_by_seller",
        filter=odata.and_(
            odata.eq("status", "Active"),
            odata.eq("direction", "Outgoing"),
            odata.eq("type", "Shared"),
            odata.team_has_email(SELLER_EMAIL),
        ),
        orderby=odata.orderby("createdDateTime", descending=True),
        select=[*SUMMARY_FIELDS, "team"],
        window_field=None,
    )
    # [END active_outgoing_cosell_by_seller]
