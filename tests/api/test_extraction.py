"""The full extract's frontier: the list stream and the search streams meet without a gap or an overlap."""

from __future__ import annotations

import random
import threading

from airflow_provider_appointments.api.extraction import _Frontier


def records(*ids: int) -> list[dict]:
    return [{"id": str(i)} for i in ids]


def test_searches_claim_downwards_from_the_top_and_the_list_keeps_only_what_is_below():
    frontier = _Frontier(floor=1000)
    assert frontier.claim(400) == (600, 1000) and frontier.claim(400) == (200, 600)
    kept, reached = frontier.keep_listed(records(1, 5, 150))
    assert [r["id"] for r in kept] == ["1", "5", "150"] and not reached
    assert frontier.claim(400) == (151, 200)  # never below what the list already took
    assert frontier.claim(400) is None
    kept, reached = frontier.keep_listed(records(160, 210))
    assert kept == [] and reached  # searched ids are the searches' own: the list stops


def test_no_claim_after_the_list_has_finished():
    frontier = _Frontier(floor=1000)
    frontier.list_done = True
    assert frontier.claim(100) is None


def race(seed: int, top: int = 5000) -> list[int]:
    """One list stream and two search streams over ids 1..top, paced at random: the ids each side took."""
    rng = random.Random(seed)
    frontier = _Frontier(floor=top + 1)
    taken: list[int] = []
    lock = threading.Lock()

    def listing() -> None:
        position = 1
        while position <= top:
            page = list(range(position, min(position + rng.randint(1, 120), top + 1)))
            kept, reached = frontier.keep_listed(records(*page))
            with lock:
                taken.extend(int(r["id"]) for r in kept)
            if reached:
                break
            position = page[-1] + 1
        with frontier.lock:
            frontier.list_done = True

    def searching() -> None:
        while (claimed := frontier.claim(rng.randint(50, 400))) is not None:
            with lock:
                taken.extend(range(*claimed))

    threads = [threading.Thread(target=listing)] + [threading.Thread(target=searching) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return taken


def test_racing_sides_cover_every_id_exactly_once():
    for seed in range(20):
        assert sorted(race(seed)) == list(range(1, 5001)), seed
