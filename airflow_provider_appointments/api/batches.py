"""One batch path: every batch endpoint is described as data (`BatchEndpoint`) and run by `BatchRunner`,
which chunks the inputs, sends the chunks concurrently, and maps each answer back to its inputs by
key — a whole-batch failure becomes one outcome per input."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_appointments.api.results import (
    BATCH_LIMIT,
    BatchResult,
    RecordOutcome,
    chunked,
    failed_outcome,
    first_of_each_key,
    map_answer,
    repeated_input,
)
from airflow_provider_appointments.errors import HubSpotError
from airflow_provider_appointments.transport.http import HubSpotTransport

Chunk = list[tuple[int, Any]]


def UNKEYED(item: Any) -> str:  # noqa: N802 - a marker, passed as `distinct`
    """`BatchRunner.run(distinct=UNKEYED)`: inputs have no key of their own (creates without a unique
    property); each is distinct by its position."""
    raise TypeError("UNKEYED is a marker, not a key function")


class ChunkObserver(Protocol):
    """Told of each request of a batch call as it goes (a checkpoint journal); called from sender threads.

    ``sending`` comes before a chunk's request with the positions (in the call's inputs) it carries;
    ``settled`` after, with their final outcomes.
    """

    def sending(self, positions: list[int]) -> None: ...

    def settled(self, outcomes: list[RecordOutcome]) -> None: ...


@dataclass(frozen=True)
class BatchEndpoint:
    """A batch endpoint and how its answers name their inputs.

    :param operation: its name in results, logs and thread names (``read``, ``upsert``, …).
    :param path: the URL path it is posted to.
    :param body: the request body for a chunk of inputs.
    :param key: an input's key, as the answer names it (an id, a unique value, a trace id).
    :param result_key: the key of one item of the answer's ``results``.
    :param error_keys: the ``context`` entries of an error that name the failing inputs' keys.
    :param idempotent: False for creates: a lost answer is then never replayed by the transport.
    :param new_default: ``new`` of a result that does not say (creates: True; updates: False).
    :param params: query parameters (``archived=true``).
    :param created_since_ms: a result created at or after this moment counts as new (a resumed write).
    :param keep_records: keep the answer's records in `BatchResult.records` (reads).
    :param explain: rewrites HubSpot's errors before they are mapped (e.g. to name the missing side).
    """

    operation: str
    path: str
    body: Callable[[list[Any]], dict]
    key: Callable[[Any], str]
    result_key: Callable[[dict], str | None]
    error_keys: tuple[str, ...] = ("ids", "id")
    idempotent: bool = True
    new_default: bool | None = None
    params: dict[str, str] | None = None
    created_since_ms: int | None = None
    keep_records: bool = False
    explain: Callable[[list[dict]], list[dict]] | None = None


class BatchRunner:
    """Runs batch endpoints over one transport, `concurrency` chunks in flight."""

    def __init__(self, transport: HubSpotTransport, concurrency: int) -> None:
        self.transport = transport
        self.concurrency = concurrency

    def send(self, endpoint: BatchEndpoint, chunk: Chunk, records: list[dict] | None = None) -> list[RecordOutcome]:
        """One request for one chunk; one outcome per input of the chunk, in its order."""
        keyed = [(index, endpoint.key(item)) for index, item in chunk]
        try:
            answer = self.transport.request("POST", endpoint.path, params=endpoint.params,
                                            json_body=endpoint.body([item for _, item in chunk]),
                                            idempotent=endpoint.idempotent)
        except HubSpotError as error:
            return [failed_outcome(index, key, error) for index, key in keyed]
        if answer.body is None:  # 204: archive answers nothing, even for ids that do not exist
            return [RecordOutcome(index, key, True, hubspot_id=key) for index, key in keyed]
        results = answer.body.get("results", []) if isinstance(answer.body, dict) else []
        errors = answer.body.get("errors", []) if isinstance(answer.body, dict) else []
        if records is not None:
            records.extend(results)
        return map_answer(keyed, results, endpoint.explain(errors) if endpoint.explain else errors,
                          result_key=endpoint.result_key, error_keys=endpoint.error_keys,
                          new_default=endpoint.new_default, created_since_ms=endpoint.created_since_ms,
                          correlation_id=answer.headers.get("X-HubSpot-Correlation-Id"))

    def run(self, endpoint: BatchEndpoint, inputs: Sequence[Any], batch_size: int = BATCH_LIMIT,
            send: Callable[[Chunk], list[RecordOutcome]] | None = None,
            distinct: Callable[[Any], str] | None = None, observer: ChunkObserver | None = None) -> BatchResult:
        """Chunk `inputs`, send the chunks concurrently, and gather one outcome per input in order.

        An input whose key (``distinct``, default ``endpoint.key``) repeats an earlier input's is not
        sent: it fails ``DUPLICATE_INPUT_KEY``, so no answer is ever shared by two inputs
        (``distinct=UNKEYED``: each input is distinct by its position).

        :param send: sends one chunk (default: `BatchRunner.send` of `endpoint`); creates wrap it to
            reconcile lost answers.
        :param observer: told before and after each chunk's request (a checkpoint journal).
        """
        keys = [(distinct or endpoint.key)(item) for item in inputs] if distinct is not UNKEYED else \
            [str(position) for position in range(len(inputs))]
        firsts, repeats = first_of_each_key(keys)
        indexed = [(position, inputs[position]) for position in firsts]
        chunks = [list(chunk) for chunk in chunked(indexed, batch_size)]
        result = BatchResult(endpoint.operation, batches=len(chunks))
        lock = threading.Lock()
        kept: list[dict] = []

        def send_one(chunk: Chunk) -> list[RecordOutcome]:
            if observer is not None:
                observer.sending([position for position, _ in chunk])
            if send is not None:
                outcomes = send(chunk)
            else:
                records: list[dict] | None = [] if endpoint.keep_records else None
                outcomes = self.send(endpoint, chunk, records)
                with lock:
                    kept.extend(records or [])
            if observer is not None:
                observer.settled(outcomes)
            return outcomes

        before = self.transport.requests_sent
        workers = max(1, min(self.concurrency, len(chunks)))
        if workers <= 1:
            gathered = [send_one(chunk) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"hubspot-{endpoint.operation}") as pool:
                gathered = list(pool.map(send_one, chunks))
        gathered.append([repeated_input(position, keys[position], first) for position, first in repeats.items()])
        result.outcomes = sorted(itertools.chain.from_iterable(gathered), key=lambda outcome: outcome.index)
        result.records = kept
        result.requests = self.transport.requests_sent - before
        if len(result.outcomes) != len(inputs):  # every input must end in exactly one place
            raise HubSpotError(f"{endpoint.operation}: {len(result.outcomes)} outcomes for {len(inputs)} inputs")
        return result
