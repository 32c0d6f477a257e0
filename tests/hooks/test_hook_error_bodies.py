"""The hook's HTTP errors quote both error body shapes the emulator can serve, whole and exact."""

from __future__ import annotations

import pytest

from airflow_provider_partner.errors import PartnerCenterHTTPError
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

# The hook's HTTP and paging layer, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

DESCRIPTION = "The value of /details/dealValue is invalid: 'not a number' is not of type 'number'."
BODIES = {
    "partner-center": '{"code":"InvalidValue","description":"'
    + DESCRIPTION
    + '","data":[],"source":"PartnerCenterEmulator"}',
    "odata": '{"error":{"code":"InvalidValue","message":"' + DESCRIPTION + '"}}',
}


@pytest.mark.parametrize("error_format", sorted(BODIES))
def test_a_refused_patch_quotes_the_body(emulator_factory, connect, error_format: str) -> None:
    emu = emulator_factory(referrals=50, seed=7, error_format=error_format)
    hook = PartnerCenterHook(connect(emu))
    referral = emu.referrals()[0]
    with pytest.raises(PartnerCenterHTTPError) as caught:
        hook.update_referral(
            referral["id"], [{"op": "replace", "path": "/details/dealValue", "value": "not a number"}]
        )
    err = caught.value
    assert (err.status, err.method, err.body) == (400, "PATCH", BODIES[error_format])
    assert str(err) == (
        "The API refused the request; the response body says which part was invalid. "
        f"[HTTP 400 on PATCH {err.url}; MS-RequestId={err.request_id}; "
        f"MS-CorrelationId={err.correlation_id}; Request-ID={err.server_request_id}] "
        f"Response body: {BODIES[error_format]}"
    )
    assert err.url == f"{emu.info['referrals_url']}/{referral['id']}"
