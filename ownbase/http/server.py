"""uvicorn's HTTP/1.1 protocol (httptools) with the two bounds it lacks: header size and header time.

httptools buffers a header line until it ends, so without a limit one client can make the process
hold (and copy) a 50 MB header; and a connection that sends its headers a byte at a time (slowloris)
or nothing at all is never timed out. As nginx does (``large_client_header_buffers``,
``client_header_timeout``), the request line plus headers may take at most
``OWNBASE_HTTP_MAX_HEADER_BYTES`` (else 431 and the connection is closed) and must arrive within
``OWNBASE_HTTP_HEADER_TIMEOUT`` seconds of the connection opening or of the request's first byte.
Idle keep-alive connections keep uvicorn's own ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ownbase.settings import Settings, cached_settings

PROTOCOL = "ownbase.http.server:BoundedHttpToolsProtocol"  # uvicorn's `http=` (an import string survives --workers)


class _HeadersTooLarge(Exception):
    pass


def uvicorn_http_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn.run() options of the HTTP layer (``ownbase start``)."""
    return {"http": PROTOCOL}


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = cached_settings()
        self._max_header_bytes = settings.http_max_header_bytes
        self._header_timeout = settings.http_header_timeout
        self._in_headers = True  # between a request's first byte (or the connection) and its headers' end
        self._header_bytes = 0  # bytes fed to the parser while in the header phase
        self._header_size = 0  # request line + headers as parsed
        self._header_timer: asyncio.TimerHandle | None = None

    # --- timers -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self._header_timeout, self._on_header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.transport is None or self.transport.is_closing() or not self._in_headers:
            return
        if self._header_bytes:
            self._reply_and_close(408, b"Request header timeout")
        else:
            self.transport.close()

    # --- size ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._start_header_timer()  # a keep-alive connection's next request starts here
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self._reply_and_close(431, b"Request header fields too large")
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_headers:
            # Still inside the headers: what the parser holds is bounded by what it was fed.
            self._header_bytes += len(data)
            if self._header_bytes > self._max_header_bytes:
                self._reply_and_close(431, b"Request header fields too large")

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._header_size = 0
        self._start_header_timer()

    def on_url(self, url: bytes) -> None:
        self._grow(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _grow(self, size: int) -> None:
        self._header_size += size
        if self._header_size > self._max_header_bytes:
            raise _HeadersTooLarge

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        super().on_headers_complete()

    def _reply_and_close(self, status: int, message: bytes) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: ", str(len(message)).encode(), b"\r\n", b"connection: close\r\n\r\n", message]))
        self.transport.close()
