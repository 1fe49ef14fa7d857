"""Fetching `http(s)` references: only when the user allows it, with a timeout, once per run."""

from __future__ import annotations

import urllib.error
import urllib.request

TIMEOUT_SECONDS = 10.0
MAX_BYTES = 10 * 1024 * 1024


class FetchError(Exception):
    """Why a URL could not be read, in words for the user."""


def fetch(url: str, timeout: float = TIMEOUT_SECONDS) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "asyncapi-pygen"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: bytes = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot fetch: {reason}") from None
    if len(data) > MAX_BYTES:
        raise FetchError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FetchError("not UTF-8 text") from None
