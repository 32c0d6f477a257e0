"""Scan every log file of a soak for any token the emulator issued."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Token characters (URL-safe base64, JWT dots): a token in a log line is a run of these.
_RUN = re.compile(rb"[A-Za-z0-9_\-.~+/=]{32,}")
#: A token is known by its last characters: their random end (a JWT's signature) is its own.
_KEY = 32


def scan_for_tokens(root: Path, issued: dict[str, list[str]]) -> dict[str, Any]:
    """
    Look for every issued token in every log file under ``root`` (``*.log``, ``*.jsonl``, ``logs/``).

    A token is found when a run of token characters contains its last :data:`_KEY` characters
    (its random end: JWT-shaped tokens all begin alike), so a token joined to its neighbours or
    with its start cut off still counts.

    :return: files and lines scanned, tokens looked for, and ``found``: ``[(file, kind)]``.
    """
    keys: dict[bytes, str] = {}
    for kind, tokens in issued.items():
        for token in tokens:
            keys[token[-_KEY:].encode()] = kind
    found: list[tuple[str, str]] = []
    files = lines = 0
    for path in sorted(root.rglob("*")):
        # Logs only: the credential stores (*.json) hold tokens by design.
        if not path.is_file() or (path.suffix not in {".log", ".jsonl"} and "logs" not in path.parts):
            continue
        files += 1
        with path.open("rb") as stream:
            for line in stream:
                lines += 1
                for run in _RUN.findall(line):
                    for start in range(len(run) - _KEY + 1):
                        kind = keys.get(run[start : start + _KEY])
                        if kind is not None:
                            found.append((str(path.relative_to(root)), kind))
                            break
    return {
        "files": files,
        "lines": lines,
        "tokens": sum(len(t) for t in issued.values()),
        "found": found,
    }
