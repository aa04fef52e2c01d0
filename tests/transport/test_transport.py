"""Pure transport logic: the retry policy's decisions and the pacing arithmetic on a fake clock."""

from __future__ import annotations

import random
import subprocess
import sys

from airflow_provider_appointments.transport.pacing import Pacer
from airflow_provider_appointments.transport.retry import RateLimit, RetryPolicy, parse_retry_after, rate_limit_of


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_429_is_classified_once_from_typed_facts():
    # The policy HubSpot names decides; a search answer without one is search's own budget. No message text.
    assert rate_limit_of({"policyName": "DAILY", "message": "secondly limit"}, search=True) is RateLimit.DAILY
    assert rate_limit_of({"message": "You have reached your secondly limit."}, search=True) is RateLimit.SEARCH
    assert rate_limit_of({"message": "You have reached your secondly limit."}, search=False) is RateLimit.TEN_SECONDLY
    assert rate_limit_of({"policyName": "SECONDLY"}, search=False) is RateLimit.SEARCH
    assert rate_limit_of(None, search=False) is RateLimit.TEN_SECONDLY


def test_retry_policy_decisions():
    policy = RetryPolicy(max_attempts=4)
    rng = random.Random(1)
    rolling = RateLimit.TEN_SECONDLY
    assert policy.delay_after_status(1, 429, {"Retry-After": "3"}, rolling, idempotent=False) == 3
    assert policy.delay_after_status(1, 429, {}, RateLimit.DAILY, idempotent=True) is None
    assert policy.delay_after_status(2, 429, {}, RateLimit.SEARCH, idempotent=True) == 2
    assert 1 <= policy.delay_after_status(1, 429, {}, rolling, idempotent=True, rng=rng) <= 10
    assert policy.delay_after_status(1, 502, {}, None, idempotent=True, rng=rng) <= 0.5
    assert policy.delay_after_status(1, 502, {}, None, idempotent=False) is None  # creates are never replayed here
    assert policy.delay_after_status(1, 400, {}, None, idempotent=True) is None
    assert policy.delay_after_status(4, 503, {}, None, idempotent=True) is None  # attempts exhausted
    assert policy.delay_after_failure(1, safe=False) is None and policy.delay_after_failure(1, safe=True) > 0
    assert all(policy.backoff(a, rng) <= policy.backoff_cap_s for a in range(1, 20))
    assert policy.may_resend(3) and not policy.may_resend(4)  # creates read back share the one budget
    assert parse_retry_after("2.5") == 2.5 and parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_pacing_keeps_a_single_process_under_its_budget():
    clock = FakeClock()
    limiter = Pacer(100, clock=clock, sleep=clock.sleep, utilization=0.95)
    sent = [limiter.acquire() for _ in range(400)]
    for i, moment in enumerate(sent):
        in_window = [t for t in sent[: i + 1] if moment - t < 10.0]
        assert len(in_window) <= 95
    assert sent[-1] >= 30.0  # 400 requests at 95 per 10 s


def test_pacing_backs_off_when_other_processes_use_the_account():
    clock = FakeClock()
    limiter = Pacer(100, clock=clock, sleep=clock.sleep)
    first = limiter.acquire()
    # HubSpot says 80 of 100 are used, though this process sent one: others use ~79.
    limiter.observe({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "20"}, first)
    quick = 0
    while clock.now == 0.0:
        limiter.acquire()
        quick += 1
    assert quick <= 20  # it did not assume the whole budget was its own


def test_pacing_learns_the_budget_from_headers_and_pauses_after_429():
    clock = FakeClock()
    limiter = Pacer(None, clock=clock, sleep=clock.sleep)
    moment = limiter.acquire()
    limiter.observe({"X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Remaining": "9",
                     "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}, moment)
    assert limiter.limit == 10
    limiter.penalize(5.0)
    assert limiter.acquire() >= 5.0


def test_the_provider_is_registered_with_airflow():
    listed = subprocess.run([sys.executable, "-m", "airflow", "providers", "list"], capture_output=True, text=True,
                            timeout=120)
    assert "airflow-provider-appointments" in listed.stdout
    from airflow_provider_appointments import get_provider_info

    info = get_provider_info()
    connection = info["connection-types"][0]
    assert connection["connection-type"] == "hubspot"
    assert connection["hook-class-name"] == "airflow_provider_appointments.hooks.hubspot.HubSpotAppointmentsHook"
    fields = {"api_version", "client_id", "client_secret", "refresh_token", "requests_per_10s", "concurrency"}
    assert fields <= set(connection["conn-fields"])
