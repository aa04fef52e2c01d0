"""Fault injection: gateway errors, proxy pages, dropped connections, lost or late or cut answers, 429s.

A request that matches `FaultConfig.paths` / `methods` gets a fault with probability `rate`, drawn
from `kinds` by a random stream seeded from the simulator's seed (the same sequence of draws for
the same seed). Kinds:

- ``502``, ``503``, ``504``: HubSpot's JSON error body with that status, before anything is applied;
- ``html``: a 502 with a ``text/html`` proxy error page (what a load balancer answers);
- ``429``: a burst of `burst_length` ten-secondly rate-limit answers (this request and the next ones);
- ``reset``: the connection is reset without an answer, before anything is applied;
- ``reset_after_apply``: the request is applied, then the connection is reset (the answer is lost);
- ``timeout``: the request is applied, and the answer is held back `timeout_s` seconds;
- ``truncated``: the request is applied, and the answer's JSON body is cut in half.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("502", "503", "504", "html", "429", "reset", "reset_after_apply", "timeout", "truncated")
BEFORE_APPLY = frozenset({"502", "503", "504", "html", "429", "reset"})
PROXY_PAGE = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
              b"</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
Send = Callable[[dict], Awaitable[None]]


@dataclass
class FaultConfig:
    """What to break; everything off by default.

    :param rate: probability (0..1) that a matching request gets a fault.
    :param kinds: the fault kinds drawn from (see `FAULT_KINDS`).
    :param paths: regular expression a request path must contain a match of (e.g. ``batch/create``);
        None matches every API path (the admin endpoints are never faulted).
    :param methods: HTTP methods faults apply to; empty means all.
    :param timeout_s: how long a ``timeout`` fault holds the answer back.
    :param burst_length: how many consecutive requests a ``429`` fault answers with 429.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("502", "503", "504")
    paths: str | None = None
    methods: tuple[str, ...] = ()
    timeout_s: float = 5.0
    burst_length: int = 3

    def __post_init__(self) -> None:
        self.kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(str(kind) for kind in self.kinds)
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {self.rate}")
        self.methods = tuple(method.upper() for method in self.methods)
        if self.paths is not None:
            re.compile(self.paths)


class FaultInjector:
    """Decides, request by request, whether and how to break the answer; counts what it injected.

    :param config: the fault settings.
    :param seed: seed of the random draws.
    """

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.pending_429 = 0
        self.injected: dict[str, int] = {}
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        """Inject faults per `config` from now on."""
        with self._lock:
            self.config = config
            self._paths = re.compile(config.paths) if config.paths else None

    def force_429(self, count: int) -> None:
        """Answer the next `count` API requests with 429, whatever their path."""
        with self._lock:
            self.pending_429 += count

    def clear(self) -> None:
        with self._lock:
            self.pending_429 = 0
            self.injected = {}

    def draw(self, method: str, path: str) -> str | None:
        """The fault kind for this request, or None."""
        with self._lock:
            if self.pending_429 > 0:
                self.pending_429 -= 1
                return self._count("429")
            config = self.config
            if config.rate <= 0 or not config.kinds:
                return None
            if (config.methods and method not in config.methods) or (self._paths and not self._paths.search(path)):
                return None
            if self._rng.random() >= config.rate:
                return None
            kind = self._rng.choice(config.kinds)
            if kind == "429":
                self.pending_429 += max(config.burst_length - 1, 0)
            return self._count(kind)

    def _count(self, kind: str) -> str:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


async def reset_connection(send: Send) -> None:
    """Reset the client's TCP connection without an answer: the client sees a connection reset
    (``ConnectionResetError`` / ``RemoteDisconnected``), as when a proxy drops it.

    uvicorn's ASGI ``send`` is a bound method of the request cycle, which holds the transport; an
    ``SO_LINGER`` of zero makes closing it send a TCP RST instead of an orderly FIN.
    """
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: the ASGI server does not expose its transport")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # the plain close below still ends the connection without an answer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server notice the disconnect before the application returns, so it does not log an
    # "ASGI callable returned without starting response" error for a fault we made on purpose.
    for _ in range(20):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)


def truncate(body: bytes) -> bytes:
    """The first half of a body: no longer parseable JSON."""
    return body[: max(1, len(body) // 2)]
