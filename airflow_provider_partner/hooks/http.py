"""
Resilient HTTP for the Partner Center API: retries, request ids, bearer token confinement.

One :class:`PartnerCenterHttp` per hook. Every call gets a new ``MS-CorrelationId`` and an
``MS-RequestId`` that stays the same across the retries of that call, so Microsoft can tell a
retry from a new request. Retries (``tenacity``) cover 429/500/502/503/504, connection errors and
bodies cut off in transit, with exponential backoff plus jitter, ``Retry-After`` honoured up to a
cap, and bounded attempts and total time. A 401 triggers one forced token refresh and a retry.
Every failure becomes one of the exceptions of :mod:`airflow_provider_partner.errors`, an HTTP status always a
:class:`~.errors.PartnerCenterHTTPError` subclass.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from urllib3.exceptions import NewConnectionError

from airflow_provider_partner.errors import (
    PartnerCenterConnectionError,
    PartnerCenterNextLinkError,
    PartnerCenterTLSError,
    trim_body,
)
from airflow_provider_partner.hooks.connection import PartnerCenterSettings
from airflow_provider_partner.hooks.http_errors import RETRY_STATUSES, error_for
from airflow_provider_partner.hooks.session import new_session
from airflow_provider_partner.hooks.transfer import (
    AttemptDeadline,
    AttemptTimedOut,
    TrackingAdapter,
    read_capped,
)
from airflow_provider_partner.hooks.urls import UnsafeURLError, origin, redact_url

__all__ = ["RETRY_STATUSES", "PartnerCenterHttp", "SharedBackoff", "retry_after_seconds"]

log = logging.getLogger(__name__)

#: Write methods are retried only when the server says it did not process the request.
WRITE_RETRY_STATUSES = frozenset({429, 503})
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,  # includes resets and connect timeouts
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # body cut off mid-transfer
    requests.exceptions.ContentDecodingError,
)


class _RetryableStatusError(Exception):
    """A response whose status says "try again"; carried through tenacity."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def retry_after_seconds(value: str | None) -> float | None:
    """
    Parse a ``Retry-After`` header (delta seconds or an HTTP date); ``None`` when absent/invalid.

    :param value: the header value.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class SharedBackoff:
    """
    A pause that every client sharing it honours: the slices of one extraction slow down together.

    When the API throttles one request (429, or 503 with ``Retry-After``), the others would be
    throttled too: each client holds back its next request until the longest wait announced so
    far has passed. Requests already on the wire are not recalled.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0

    def hold(self, seconds: float) -> None:
        """Hold every sharing client back for ``seconds`` from now (a longer hold stays)."""
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left of the current hold (0 when none)."""
        with self._lock:
            return max(0.0, self._until - time.monotonic())


def _same_origin(url: str, settings: PartnerCenterSettings) -> bool:
    # Parsed as urllib3 will send it; a URL it cannot parse safely is never sent anything.
    try:
        scheme_host_port = origin(url)
    except UnsafeURLError:
        return False
    return scheme_host_port == settings.api_origin and scheme_host_port[0] == "https"


def _never_sent(error: BaseException) -> bool:
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError)


def _retry_predicate(write: bool) -> Callable[[BaseException], bool]:
    def retryable(error: BaseException) -> bool:
        if isinstance(error, _RetryableStatusError):
            return True
        if isinstance(error, requests.exceptions.SSLError):
            return False  # a certificate problem does not heal by retrying
        if write:
            # A write may have been applied unless the connection was never established.
            return _never_sent(error)
        return isinstance(error, TRANSIENT_ERRORS)

    return retryable


class PartnerCenterHttp:
    """
    Send API requests with retries and map failures to the hook's exceptions.

    The bearer token goes only to https URLs on the configured API origin: any other URL is
    refused before a request is made, and redirects are not followed.

    :param settings: connection settings.
    :param get_token: ``get_token(rejected) -> str``: the current access token, or with
        ``rejected`` (a token the API refused) a refreshed one.
    :param sleep: sleep function (tests may shorten waits).
    """

    def __init__(
        self,
        settings: PartnerCenterSettings,
        get_token: Callable[[str | None], str],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.get_token = get_token
        self.sleep = sleep
        self.adapter = TrackingAdapter()
        #: Shared by the hooks of one extraction (``extract.fetch.make_hooks``); its own otherwise.
        self.backoff = SharedBackoff()
        self.session = new_session(settings, headers={"Accept": "application/json"}, adapter=self.adapter)

    def __repr__(self) -> str:
        return f"PartnerCenterHttp(api_url={self.settings.api_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    # -- waits -----------------------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        backoff = self.settings.backoff_factor * (2 ** (state.attempt_number - 1))
        backoff = random.uniform(backoff / 2, backoff * 1.5)
        error = state.outcome.exception() if state.outcome else None
        throttled = False
        if isinstance(error, _RetryableStatusError):
            hinted = retry_after_seconds(error.response.headers.get("Retry-After"))
            throttled = hinted is not None or error.response.status_code == 429
            if hinted is not None:
                backoff = hinted + random.uniform(0, 0.1 * max(hinted, 0.1))
        wait = max(0.0, min(backoff, self.settings.max_retry_wait))
        if throttled:
            self.backoff.hold(wait)
        return wait

    def _stop(self, state: RetryCallState) -> bool:
        if stop_after_attempt(self.settings.max_retries + 1)(state):
            return True
        # Never start a wait that would end past the total budget of this request.
        elapsed = time.monotonic() - state.start_time
        return elapsed + (state.upcoming_sleep or 0.0) > self.settings.max_retry_time

    # -- requests --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
    ) -> requests.Response:
        """
        Send one logical request (retried as needed) and return the successful response.

        :param method: HTTP method.
        :param url: absolute URL with its query; must be on the configured API origin over https.
        :param json: JSON body.
        :param headers: extra headers.
        :param ok: statuses that count as success.
        """
        if not _same_origin(url, self.settings):
            # Second line of defence behind the nextLink policy: never send the token elsewhere.
            raise PartnerCenterNextLinkError(
                f"Refusing to send the bearer token to {redact_url(url)}: only {self.settings.api_url} "
                "over https receives it. Check the connection host."
            )
        request_id = str(uuid.uuid4())
        correlation_id = str(uuid.uuid4())
        call_headers = {"MS-RequestId": request_id, "MS-CorrelationId": correlation_id, **(headers or {})}
        ok_statuses = frozenset(ok)
        write = method.upper() not in {"GET", "HEAD", "OPTIONS"}
        # max_retry_time bounds the whole call: no attempt may run past it.
        deadline = time.monotonic() + self.settings.max_retry_time
        refreshed = False
        while True:
            response = self._send_with_retries(
                method, url, json=json, headers=call_headers, write=write, deadline=deadline
            )
            if response.status_code == 401 and not refreshed:
                # The token expired or was revoked between acquisition and use: refresh once.
                refreshed = True
                log.info(
                    "HTTP 401 on %s %s (MS-RequestId=%s): refreshing the access token and retrying once",
                    method,
                    redact_url(url),
                    request_id,
                )
                sent = str(response.request.headers.get("Authorization", ""))
                self.get_token(sent.removeprefix("Bearer ") or None)
                continue
            break
        if response.status_code in ok_statuses:
            return response
        raise error_for(response, method, request_id, correlation_id, self.settings)

    def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        headers: Mapping[str, str],
        write: bool,
        deadline: float,
    ) -> requests.Response:
        request_id = headers["MS-RequestId"]
        retry_statuses = WRITE_RETRY_STATUSES if write else RETRY_STATUSES
        shown = redact_url(url)
        tries = 0

        def send() -> requests.Response:
            nonlocal tries
            tries += 1
            return self._send_once(
                method, url, json=json, headers=headers, retry_statuses=retry_statuses, deadline=deadline
            )

        retrying = Retrying(
            retry=retry_if_exception(_retry_predicate(write)),
            wait=self._wait,
            stop=self._stop,
            sleep=self.sleep,
            before_sleep=self._log_retry(method, shown, request_id),
            reraise=True,
        )
        try:
            return retrying(send)
        except _RetryableStatusError as exhausted:
            return exhausted.response
        except requests.exceptions.SSLError as err:
            raise PartnerCenterTLSError(
                f"TLS verification failed for {method} {shown} (MS-RequestId={request_id}): "
                f"{trim_body(str(err), 300)}. If the API sits behind a TLS-inspecting proxy or uses a "
                "private CA, set the connection extra ca_bundle to its PEM bundle.",
                method=method,
                url=shown,
                request_id=request_id,
            ) from None
        except TRANSIENT_ERRORS as err:
            raise PartnerCenterConnectionError(
                f"{method} {shown} failed after {tries} attempt(s) (MS-RequestId={request_id}): "
                f"{type(err).__name__}: {trim_body(str(err), 300)}. "
                "Check network access to the API (proxies, firewall) or raise extras max_retries/timeout."
            ) from None

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        headers: Mapping[str, str],
        retry_statuses: frozenset[int],
        deadline: float,
    ) -> requests.Response:
        held = self.backoff.remaining()
        if held > 0:
            # Another slice of this extraction was throttled: wait with it (within the budget).
            self.sleep(min(held, max(0.0, deadline - time.monotonic())))
        token = self.get_token(None)
        seconds = min(self.settings.attempt_timeout, deadline - time.monotonic())
        if seconds <= 0:
            raise AttemptTimedOut(f"no time left of max_retry_time={self.settings.max_retry_time:g} s")
        where = f"{method} {redact_url(url)} (MS-RequestId={headers['MS-RequestId']})"
        with AttemptDeadline(self.adapter, seconds) as watchdog:
            try:
                # The session adds verify and timeout to every request (see session.py).
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                    allow_redirects=False,  # a redirect could carry the token to another host
                    stream=True,  # read below, bounded
                )
                read_capped(response, self.settings.max_response_mb, where)
            except Exception as err:
                if watchdog.expired:
                    raise self._timed_out(seconds) from err
                raise
        # A socket shut mid-headers can also look like a short, complete answer: never use it.
        if watchdog.expired:
            raise self._timed_out(seconds)
        if response.status_code in retry_statuses:
            raise _RetryableStatusError(response)
        return response

    def _timed_out(self, seconds: float) -> AttemptTimedOut:
        limits = self.settings
        return AttemptTimedOut(
            f"the attempt did not finish within {seconds:.1f} s (attempt_timeout="
            f"{limits.attempt_timeout:g} s, max_retry_time={limits.max_retry_time:g} s)"
        )

    def _log_retry(self, method: str, url: str, request_id: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            cause = (
                f"HTTP {error.response.status_code}"
                if isinstance(error, _RetryableStatusError)
                else type(error).__name__
            )
            log.warning(
                "Retrying %s %s after %s (attempt %d of %d, waiting %.1f s, MS-RequestId=%s)",
                method,
                url,
                cause,
                state.attempt_number + 1,
                self.settings.max_retries + 1,
                state.upcoming_sleep,
                request_id,
            )

        return before_sleep
