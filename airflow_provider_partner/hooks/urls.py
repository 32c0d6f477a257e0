"""
URLs the hook sends requests to, read the way ``urllib3`` will send them, and URLs in messages.

Python's ``urllib.parse`` and ``urllib3`` disagree on some URLs: ``https://evil.test\\@api.host/``
is ``api.host`` to ``urlsplit`` but ``evil.test`` to urllib3, which treats the backslash as the
start of the path. The bearer token's origin check therefore parses with urllib3's own parser,
and refuses outright what no API returns: backslashes, whitespace and control characters.

Messages never show a URL's userinfo or the values of its query parameters (signed URLs carry
credentials there), except the OData options that say what was asked (``$filter`` and friends).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = ["UnsafeURLError", "origin", "redact_url"]

#: Query options whose values are kept in messages: they say what was asked, and hold no secret.
_SHOWN_OPTIONS = frozenset({"$filter", "$orderby", "$select", "$top", "$count", "$skip"})
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class UnsafeURLError(ValueError):
    """A URL that cannot be followed safely; the message says why (and shows it redacted)."""


def origin(url: str) -> tuple[str, str, int]:
    """
    ``(scheme, host, port)`` of ``url`` as urllib3 will connect to it.

    :param url: an absolute URL.
    :raises UnsafeURLError: the URL holds a backslash, whitespace or a control character, or
        cannot be parsed (a port out of range or not a number, an unclosed IPv6 bracket, ...).
    """
    # Imported here: DAG files import the hook (and this module) at parse time.
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    bad = _UNSAFE.search(url)
    if bad is not None:
        raise UnsafeURLError(
            f"The URL {redact_url(url)!r} holds {_describe(bad.group())} at character {bad.start() + 1}, "
            "which no API URL does; refusing to follow it."
        )
    try:
        parsed = parse_url(url)
    except (LocationParseError, ValueError):
        # urllib3's own message quotes the whole URL: not repeated here.
        raise UnsafeURLError(
            f"The URL {redact_url(url)!r} cannot be parsed (a malformed host or port)."
        ) from None
    scheme = (parsed.scheme or "").lower()
    host = (parsed.host or "").lower()
    port = parsed.port or _DEFAULT_PORTS.get(scheme, 0)
    if not 0 < port < 65536:
        raise UnsafeURLError(f"The URL {redact_url(url)!r} has port {port}, outside 1-65535.")
    return scheme, host, port


def _describe(char: str) -> str:
    if char == "\\":
        return "a backslash"
    if char == " ":
        return "a space"
    return f"the control character {char!r}"


def redact_url(url: str) -> str:
    """
    ``url`` for a message: userinfo replaced by ``***``, query values by ``***`` except OData options.

    Never raises: a URL that cannot be split is cut to its scheme and ``...``.

    :param url: any URL (absolute or relative).
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return url.split(":", 1)[0] + ":..." if ":" in url else "..."
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(
        f"{quote(name, safe='$')}={quote(value, safe=_QUERY_SAFE) if name in _SHOWN_OPTIONS else '***'}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_QUERY_SAFE = "$'(),/:@ "
