"""Fetching `http(s)` references: only when the user allows it, once per run, http(s) only
(redirects included), within one deadline for the whole fetch and a cap on its size.

A socket timeout bounds each read (and a TLS handshake), not the fetch: a server that sends a
byte every few seconds would keep a run going forever. So a timer shuts the fetch's sockets down
when its time is up, whatever they are reading (headers, the body, a redirect's).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

DEADLINE_SECONDS = 10.0
_SCHEMES = ("http", "https")


class FetchError(Exception):
    """Why a URL could not be read, in words for the user."""


def _check_scheme(url: str, how: str = "") -> None:
    if urlsplit(url).scheme.lower() not in _SCHEMES:
        raise FetchError(f"{how}only http and https URLs are fetched")


def fetch(url: str, max_bytes: int) -> str:
    """The text at `url`; FetchError when it cannot be had within `DEADLINE_SECONDS` and
    `max_bytes` bytes."""
    _check_scheme(url)
    timer = _Deadline(DEADLINE_SECONDS)
    request = urllib.request.Request(url, headers={"User-Agent": "asyncapi-pygen"})
    try:
        with timer, _opener(timer).open(request, timeout=DEADLINE_SECONDS) as response:
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        if timer.expired:
            raise FetchError(f"no complete answer within {DEADLINE_SECONDS:g} s") from None
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot fetch: {reason}") from None
    if timer.expired:
        raise FetchError(f"no complete answer within {DEADLINE_SECONDS:g} s")
    if len(data) > max_bytes:
        raise FetchError(
            f"larger than the {max_bytes:,} bytes left of the size limit"
            " (--max-size MIB raises it)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FetchError("not UTF-8 text") from None


class _Deadline:
    """Shuts down every socket of one fetch when the time is up; `expired` says so."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def check(self) -> None:
        if self.expired:
            raise TimeoutError("the deadline passed")

    def connected(self, connection: http.client.HTTPConnection) -> None:
        """Watch its socket, which the response goes on reading after the connection lets go
        of it (`Connection: close`)."""
        with self._lock:
            if connection.sock is not None:
                self._sockets.append(connection.sock)
        self.check()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)


def _watched(base: type[http.client.HTTPConnection], timer: _Deadline) -> Any:
    """`base`, its sockets watched by the deadline, refusing to connect after it."""

    class Watched(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            timer.check()
            super().connect()
            timer.connected(self)

    return Watched


def _opener(timer: _Deadline) -> urllib.request.OpenerDirector:
    """urllib with proxies from the environment, but no file:, ftp: or data: handlers and
    redirects only to http(s)."""

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_watched(http.client.HTTPConnection, timer), req)

    class Secure(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            connection = _watched(http.client.HTTPSConnection, timer)
            return self.do_open(connection, req, context=ssl.create_default_context())

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(
            self,
            req: urllib.request.Request,
            fp: Any,
            code: int,
            msg: str,
            headers: Any,
            newurl: str,
        ) -> urllib.request.Request | None:
            _check_scheme(newurl, f"redirected to {newurl!r}: ")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        Plain(),
        Secure(),
        Redirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener
