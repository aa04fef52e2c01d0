"""`ClientSettings`: how to reach HubSpot and how hard to push, as one frozen piece of data.

This is the only place the defaults live; the hook turns an Airflow connection into settings once.
Credentials are not settings: they live in the transport's auth object, which never shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "https://api.hubapi.com"
API_VERSIONS = ("2026-03", "v3")


@dataclass(frozen=True)
class ClientSettings:
    """How the client talks to HubSpot.

    :param base_url: ``https://api.hubapi.com``, or a loopback simulator URL.
    :param api_version: ``2026-03`` (date-versioned paths) or ``v3``.
    :param requests_per_10s: the account's 10-second budget; None learns it from HubSpot's headers.
    :param search_requests_per_second: the search endpoints' own budget (HubSpot: 5 per account).
    :param concurrency: requests in flight at once.
    :param timeout_s: read timeout of one request.
    :param connect_timeout_s: connect timeout (short: a host that does not answer a SYN is not there).
    """

    base_url: str = DEFAULT_HOST
    api_version: str = "2026-03"
    requests_per_10s: int | None = None
    search_requests_per_second: int = 5
    concurrency: int = 8
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.api_version not in API_VERSIONS:
            raise ValueError(f"api_version must be one of {API_VERSIONS}, got {self.api_version!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts as requests takes them."""
        return (min(self.connect_timeout_s, self.timeout_s), self.timeout_s)
