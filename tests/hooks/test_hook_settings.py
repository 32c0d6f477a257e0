"""Connection parsing: defaults, validation messages, masking, and a light module import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_partner.errors import PartnerCenterConfigError
from airflow_provider_partner.get_provider_info import CONN_FIELDS, get_provider_info
from airflow_provider_partner.hooks.connection import PartnerCenterSettings, settings_from_connection
from airflow_provider_partner.hooks.connection_schema import (
    ALIASES,
    EXTRA_FIELDS,
    FIELDS,
    FORM_FIELDS,
    KNOWN_EXTRAS,
    FieldKind,
)
from airflow_provider_partner.hooks.partner_center import PartnerCenterHook
from airflow_provider_partner.stores import LeaseGuarantee, ObjectStorageTextStore, open_store
from airflow_provider_partner.stores.variables import VariableTextStore


def parse(host: str | None = None, login: str | None = "app-id", password: str | None = None, **extras):
    extras.setdefault("refresh_token", "rt-secret-value-1")
    return settings_from_connection("pc", host=host, login=login, password=password, extras=extras)


# The form's extra fields, in form order: what a person must decide (the rest are documented extras).
FORM = ["tenant_id", "credential_store", "refresh_token", "ca_bundle"]

# The extra the former 18-field form saved for a user who filled in the tenant and the credential
# store: every field it showed, today's defaults frozen in and the untouched ones null (captured
# from Airflow 3.3.2's UI).
FROZEN_FORM_EXTRA = {
    "tenant_id": "contoso.onmicrosoft.com",
    "authority_host": "https://login.microsoftonline.com",
    "scope": "https://api.partner.microsoft.com/user_impersonation",
    "refresh_token": None,
    "credential_store": "variable://partner_center_credentials",
    "username": None,
    "user_password": None,
    "ca_bundle": None,
    "verify": True,
    "timeout": 60,
    "attempt_timeout": 120,
    "max_response_mb": 32,
    "max_pages": 100000,
    "max_empty_pages": 10,
    "max_retries": 8,
    "backoff_factor": 1,
    "max_retry_wait": 120,
    "max_retry_time": 900,
    "proxies": None,
}


def _all_settings(extras: dict) -> dict:
    settings = settings_from_connection("pc", host=None, login="app-id", password=None, extras=extras)
    return {name: getattr(settings, name) for name in PartnerCenterSettings.__dataclass_fields__}


def test_the_form_shows_the_fields_a_person_decides_and_the_hook_reads_every_documented_extra() -> None:
    assert list(CONN_FIELDS) == FORM
    assert [field.name for field in FORM_FIELDS] == FORM
    assert frozenset(FIELDS) | frozenset(ALIASES) == KNOWN_EXTRAS  # former names are accepted, not shown
    assert dict(ALIASES) == {"token_cache": "credential_store"}
    assert [name for name in FIELDS if name not in FORM] == [
        "authority_host", "scope", "username", "user_password", "verify", "timeout", "attempt_timeout",
        "max_response_mb", "max_pages", "max_empty_pages", "max_retries", "backoff_factor",
        "max_retry_wait", "max_retry_time", "proxies",
    ]  # fmt: skip


def test_the_form_fills_in_no_default_and_an_unset_extra_stands_for_its_default() -> None:
    for name, entry in CONN_FIELDS.items():
        assert "default" not in entry["schema"], name
    empty = settings_from_connection(
        "pc", host=None, login="app-id", password=None, extras={}, require_credentials=False
    )
    declared = PartnerCenterSettings.__dataclass_fields__
    defaults = [field for field in EXTRA_FIELDS if field.default is not None]
    assert [field.name for field in defaults] == [
        "tenant_id", "authority_host", "scope", "verify", "timeout", "attempt_timeout",
        "max_response_mb", "max_pages", "max_empty_pages", "max_retries",
        "backoff_factor", "max_retry_wait", "max_retry_time",
    ]  # fmt: skip
    for field in defaults:
        # The default an absent, a null and an empty extra stand for, and the dataclass's.
        for unset in (None, ""):
            assert getattr(parse(**{field.name: unset}), field.attribute) == getattr(empty, field.attribute)
        explicit = parse(**{field.name: field.default})
        assert getattr(empty, field.attribute) == getattr(explicit, field.attribute), field.name
        assert getattr(empty, field.attribute) == declared[field.attribute].default, field.name
    assert {f.name for f in EXTRA_FIELDS if f.kind is FieldKind.SECRET} == {"refresh_token", "user_password"}


def test_a_connection_with_the_old_forms_frozen_defaults_keeps_its_settings() -> None:
    # What the lean form saves for the same user (Airflow's form also saves its untouched fields,
    # as null), and the two keys alone: the same settings, field by field.
    lean = {
        "tenant_id": "contoso.onmicrosoft.com",
        "credential_store": "variable://partner_center_credentials",
        "refresh_token": None,
        "ca_bundle": None,
    }
    set_only = {key: value for key, value in lean.items() if value is not None}
    frozen = _all_settings(FROZEN_FORM_EXTRA)
    assert frozen == _all_settings(lean) == _all_settings(set_only)
    assert (frozen["tenant_id"], frozen["credential_store"]) == tuple(set_only.values())
    assert (frozen["timeout"], frozen["max_retries"], frozen["verify"], frozen["proxies"]) == (
        60.0,
        8,
        True,
        {},
    )
    # The old form's keys under their legacy prefix (forms before Airflow 3) read the same.
    legacy = {f"extra__partner_center__{key}": value for key, value in FROZEN_FORM_EXTRA.items()}
    assert _all_settings(legacy) == frozen


def test_the_form_speaks_to_users_not_to_tests() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert "emulator" not in json.dumps(conn_type).lower()
    # The same behaviour, in the key spelling of the hook method Airflow 3.1 calls (hidden_fields).
    behaviour = {key.replace("-", "_"): value for key, value in conn_type["ui-field-behaviour"].items()}
    assert PartnerCenterHook.get_ui_field_behaviour() == behaviour
    # Exactly what the api-server serves is checked in test_connection_form.py, on every Airflow line.
    assert behaviour["hidden_fields"] == ["schema"]  # Port shows: the Test button of Airflow 3.3 needs it
    # Help texts are plain text: the form shows them as they are, so no Markdown.
    for field in EXTRA_FIELDS:
        for text in (field.label, field.description):
            assert not any(mark in text for mark in ("`", "**", "](")), text


def test_defaults() -> None:
    s = parse()
    assert s.api_url == "https://api.partner.microsoft.com"
    assert s.referrals_url == "https://api.partner.microsoft.com/v1.0/engagements/referrals"
    assert s.authority == "https://login.microsoftonline.com/organizations"
    assert s.scopes == ("https://api.partner.microsoft.com/user_impersonation",)
    assert (s.verify, s.timeout, s.max_retries, s.backoff_factor) == (True, 60.0, 8, 1.0)
    assert (s.max_retry_wait, s.max_retry_time, dict(s.proxies)) == (120.0, 900.0, {})
    assert s.client_secret is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("api.partner.microsoft.com", "https://api.partner.microsoft.com"),
        ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
        ("https://gw.example.com/partner/v1.0/engagements/referrals", "https://gw.example.com/partner"),
    ],
)
def test_host_forms(host: str, expected: str) -> None:
    assert parse(host=host).api_url == expected


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, 443, "https://api.partner.microsoft.com"),
        ("api.partner.microsoft.com", 443, "https://api.partner.microsoft.com"),
        ("gw.example.com", 8443, "https://gw.example.com:8443"),
        ("https://127.0.0.1:8443", 443, "https://127.0.0.1:8443"),  # a URL keeps its own port
        ("api.partner.microsoft.com", 0, "https://api.partner.microsoft.com"),  # Airflow 3.1/3.2's Test
    ],
)
def test_port_counts_only_for_a_bare_host_name(host: str | None, port: int, expected: str) -> None:
    settings = settings_from_connection(
        "pc", host=host, login="app-id", password=None, port=port, extras={"refresh_token": "rt-1"}
    )
    assert settings.api_url == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "http://api.partner.microsoft.com"}, "Connection field host must be an https URL"),
        ({"login": ""}, "has no login: set it to the application (client) id"),
        ({"refresh_token": None}, "run `partner-center-login` and set extra credential_store"),
        ({"username": "u@x"}, "needs both extras username and user_password"),
        ({"proxies": "{not json"}, "Connection extra proxies must be a JSON object"),
        ({"proxies": '{"ftp": "http://p"}'}, "proxies has unknown keys ['ftp']"),
        ({"timeout": "soon"}, "Connection extra timeout must be a number >= 0.001, got 'soon'"),
        ({"max_retries": 1.5}, "Connection extra max_retries must be an integer >= 0"),
        ({"verify": "maybe"}, "Connection extra verify must be true or false"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle points to /nonexistent/ca.pem"),
        ({"scope": "openid"}, "MSAL adds openid/profile/offline_access itself"),
        ({"authority_host": "https://login.example.com/tenant"}, "must be a bare host URL"),
        ({"tenant_id": "a/b"}, "tenant_id must be a tenant id (GUID) or domain"),
        ({"token_cache": "variable://"}, "must be variable://<key> with a non-empty key"),
        ({"token_cache": "relative/cache.json"}, "needs a scheme: variable://<key>, file:///"),
        ({"credential_store": "variable://"}, "must be variable://<key> with a non-empty key"),
        (
            {"credential_store": "file:///a.json", "token_cache": "file:///b.json"},
            "sets both extra credential_store and its former name token_cache to different values",
        ),
        ({"tokn_cache": "x"}, "unknown extra field(s) ['tokn_cache']"),
    ],
)
def test_invalid_connections_name_the_field_and_the_fix(kwargs: dict, message: str) -> None:
    host = kwargs.pop("host", None)
    login = kwargs.pop("login", "app-id")
    with pytest.raises(PartnerCenterConfigError) as err:
        parse(host=host, login=login, **kwargs)
    assert message in str(err.value)


def test_settings_repr_hides_secrets(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    s = parse(
        password="client-secret-value",
        username="u@x",
        user_password="user-password-value",
        ca_bundle=str(ca),
        proxies={"https": "http://proxy:3128"},
    )
    assert s.verify == str(ca)
    text = repr(s)
    for secret in ("client-secret-value", "rt-secret-value-1", "user-password-value"):
        assert secret not in text
    assert "client_secret=***" in text


def test_secrets_are_registered_with_the_masker() -> None:
    from airflow_provider_partner.compat import secrets_masker

    parse(password="client-secret-masked-1", username="u@x", user_password="user-password-masked-1")
    text = "a client-secret-masked-1 b user-password-masked-1 c rt-secret-value-1"
    redacted = secrets_masker().redact(text)
    assert redacted == "a *** b *** c ***"


def test_open_store_kinds() -> None:
    cache = open_store("variable://partner_token_cache")
    assert isinstance(cache, VariableTextStore)
    assert isinstance(open_store("file:///tmp/x/cache.json"), ObjectStorageTextStore)
    watermark = open_store("variable://partner_watermark", "Watermark location")
    assert isinstance(watermark, VariableTextStore)
    # The Variable's description says what it holds.
    assert cache.description == "MSAL token cache of airflow-provider-partner"
    assert watermark.description == "Watermark of airflow-provider-partner"


def test_file_store_writes_atomically_with_owner_only_mode(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/sub/cache.json")
    assert store.load() is None
    store.save('{"a": 1}')
    store.save('{"a": 2}')
    target = tmp_path / "sub" / "cache.json"
    assert json.loads(store.load() or "") == {"a": 2}
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["cache.json"]  # no temp files left


def test_file_store_folders_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o000)
    try:
        store = open_store(f"file://{tmp_path}/new/deeper/cache.json")
        store.save('{"a": 1}')
        with open_store(f"file://{tmp_path}/locks/inner/cache.json").lease(5) as guarantee:
            assert guarantee is LeaseGuarantee.EXCLUSIVE
    finally:
        os.umask(previous)
    modes = {
        str(path.relative_to(tmp_path)): path.stat().st_mode & 0o777 for path in sorted(tmp_path.rglob("*"))
    }
    assert modes == {
        "new": 0o700,
        "new/deeper": 0o700,
        "new/deeper/cache.json": 0o600,
        "locks": 0o700,
        "locks/inner": 0o700,
        "locks/inner/cache.json.lock": 0o600,
    }


def test_importing_the_hook_module_stays_light() -> None:
    code = (
        "import sys, airflow.sdk; before = set(sys.modules);"
        "import airflow_provider_partner.hooks.partner_center;"
        "heavy = {'msal', 'requests', 'urllib3', 'pyarrow'} & (set(sys.modules) - before);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_query_arguments_are_validated_before_any_connection_lookup() -> None:
    from airflow_provider_partner.hooks.partner_center import PartnerCenterHook

    hook = PartnerCenterHook("no_such_connection")
    with pytest.raises(ValueError, match="not supported by the Referrals API"):
        hook.iter_pages(orderby="name desc")
    with pytest.raises(PartnerCenterConfigError, match="top must be a non-negative integer"):
        hook.iter_referrals(top=-1)
    with pytest.raises(ValueError, match="only top-level field names"):
        hook.iter_referrals(select=["customerProfile/name"])
    with pytest.raises(PartnerCenterConfigError, match="the Referrals API supports only"):
        hook.update_referral("id-1", [{"op": "remove", "path": "/status"}])
    with pytest.raises(PartnerCenterConfigError, match=r"lacks required field\(s\) \['consent', 'details'\]"):
        hook.create_referral({"type": "Independent", "customerProfile": {}})
