"""Fault injection: latency, 5xx answers, proxy error pages, dropped connections, lost responses, 429 bursts."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field

FAULT_KINDS = ("502", "503", "504", "html", "429", "reset", "reset_after_apply", "timeout", "truncated")


@dataclass
class FaultConfig:
    """What to break. `rate` is the probability per matching request; all off by default.

    :param rate: probability (0..1) that a matching request gets one of `kinds`.
    :param kinds: fault kinds to draw from (see FAULT_KINDS).
    :param paths: regex a request path must match (e.g. ``batch/create``); None matches every API path.
    :param methods: HTTP methods the faults apply to; empty means all.
    :param timeout_s: how long a ``timeout`` fault holds the answer back.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("502", "503", "504")
    paths: str | None = None
    methods: tuple[str, ...] = ()
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        self.kinds = tuple(self.kinds)
        self.methods = tuple(method.upper() for method in self.methods)


@dataclass
class FaultInjector:
    config: FaultConfig
    seed: int = 7
    burst_429: int = 0
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    def draw(self, method: str, path: str) -> str | None:
        """The fault for this request, or None."""
        with self._lock:
            if self.burst_429 > 0:
                self.burst_429 -= 1
                return self._count("429")
            config = self.config
            if config.rate <= 0 or not config.kinds:
                return None
            if config.methods and method not in config.methods:
                return None
            if config.paths and not re.search(config.paths, path):
                return None
            if self._rng.random() >= config.rate:
                return None
            return self._count(self._rng.choice(config.kinds))

    def _count(self, kind: str) -> str:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind
