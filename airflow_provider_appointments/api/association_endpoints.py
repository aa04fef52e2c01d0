"""The associations endpoints of the client: labels, the default type, batch read and create, one PUT."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_appointments.api.associations import association_input, explain_association_error
from airflow_provider_appointments.api.batches import BatchEndpoint, BatchRunner, ChunkObserver
from airflow_provider_appointments.api.paths import OBJECT_TYPE, segment
from airflow_provider_appointments.api.results import BATCH_LIMIT, OBJECT_NOT_FOUND, UNMAPPED_RESULT, BatchResult
from airflow_provider_appointments.errors import HubSpotError, HubSpotInputError
from airflow_provider_appointments.transport.http import HubSpotTransport


class AssociationEndpoints:
    """Mixed into `AppointmentsClient`, which provides the transport, the batch runner and the paths."""

    transport: HubSpotTransport
    batches: BatchRunner
    _default_types: dict[str, int]

    def associations_path(self, to_object_type: str) -> str:
        raise NotImplementedError

    @property
    def objects_path(self) -> str:
        raise NotImplementedError

    # -- the records on the other side -----------------------------------------------------------
    def find_object_ids(self, object_type: str, id_property: str,
                        values: Sequence[str]) -> tuple[dict[str, str], dict[str, str], int]:
        """Records of `object_type` (contacts, companies, deals …) by a unique property, e.g. contacts by
        ``email``: batch reads, paced and retried like every request. Returns (value → record id, value
        → why it was not found, requests)."""
        path = self.objects_path.replace(f"/{OBJECT_TYPE}", f"/{segment(object_type)}", 1) + "/batch/read"

        def matched(value: object) -> str:  # HubSpot keeps and matches emails in lower case
            text = str(value).strip()
            return text.casefold() if id_property == "email" else text

        endpoint = BatchEndpoint(
            "read", path, key=matched, keep_records=True,
            body=lambda keys: {"inputs": [{"id": key} for key in keys], "properties": [id_property],
                               "idProperty": id_property},
            result_key=lambda record: matched((record.get("properties") or {}).get(id_property)))
        wanted = list(dict.fromkeys(str(value).strip() for value in values))
        sent = list(dict.fromkeys(matched(value) for value in wanted))
        read = self.batches.run(endpoint, sent)
        for outcome in read.outcomes:  # the request refused: the property, not a value (a misspelling)
            if outcome.status == 400 and ("idProperty" in (outcome.context or {})
                                          or id_property in str(outcome.message or "")):
                raise HubSpotInputError(f"to_object_id_property {id_property!r}: {object_type} records cannot be "
                                        f"looked up by it; HubSpot answered {outcome.category}: {outcome.message}")
        by_match = {matched((record.get("properties") or {}).get(id_property)): str(record["id"])
                    for record in read.records}
        found = {value: by_match[matched(value)] for value in wanted if matched(value) in by_match}
        missing = {}
        originals: dict[str, list[str]] = {}
        for value in wanted:
            originals.setdefault(matched(value), []).append(value)
        for outcome in read.outcomes:
            for value in originals[sent[outcome.index]]:
                if value in found:
                    continue
                missing[value] = (f"no {object_type} record with {id_property} {value!r}"
                                  if outcome.succeeded or outcome.category == OBJECT_NOT_FOUND else
                                  f"looking up {object_type} by {id_property} {value!r} failed: {outcome.category} "
                                  f"{outcome.message}")
        return found, missing, read.requests

    # -- associations --------------------------------------------------------------------------
    def get_association_labels(self, to_object_type: str, from_object_type: str = OBJECT_TYPE) -> list[dict]:
        """The association types between appointments and `to_object_type` (``label`` absent = default)."""
        path = self.associations_path(to_object_type) + "/labels"
        if from_object_type != OBJECT_TYPE:
            path = path.replace(f"/{OBJECT_TYPE}/", f"/{segment(from_object_type)}/", 1)
        return list(self.transport.request("GET", path).body.get("results", []))

    def default_association_type_id(self, to_object_type: str) -> int:
        """The unlabelled (default) association type id, looked up once per object type."""
        if to_object_type not in self._default_types:
            labels = self.get_association_labels(to_object_type)
            defaults = [item for item in labels if not item.get("label") and item.get("category") == "HUBSPOT_DEFINED"]
            if not defaults:
                raise HubSpotError(f"HubSpot lists no default association type from appointments to {to_object_type}")
            self._default_types[to_object_type] = int(defaults[0]["typeId"])
        return self._default_types[to_object_type]

    def read_associations(self, appointment_ids: Sequence[str], to_object_type: str) -> dict[str, list[str]]:
        """Associated record ids per appointment (batch read of associations; search cannot return them).

        Raises `HubSpotError` when a chunk fails; an appointment HubSpot reports as missing, or leaves
        out of its answer, has no associations.
        """
        endpoint = BatchEndpoint("read-associations", self.associations_path(to_object_type) + "/batch/read",
                                 key=str, keep_records=True, result_key=lambda item: str(item["from"]["id"]),
                                 body=lambda keys: {"inputs": [{"id": key} for key in keys]})
        result = self.batches.run(endpoint, [str(value) for value in appointment_ids])
        failed = [o for o in result.failures() if o.category not in (OBJECT_NOT_FOUND, UNMAPPED_RESULT)]
        if failed:
            raise HubSpotError(f"reading {to_object_type} associations failed for {len(failed)} appointment(s): "
                               f"{failed[0].category} {failed[0].message}")
        return {str(item["from"]["id"]): [str(target["toObjectId"]) for target in item.get("to", [])]
                for item in result.records}

    def associate(self, appointment_id: str, to_object_type: str, to_object_id: str,
                  association_type_id: int | None = None) -> dict:
        """Associate one pair (the guide's ``.../{toObjectType}/{toObjectId}/{associationTypeId}`` PUT)."""
        type_id = association_type_id or self.default_association_type_id(to_object_type)
        path = (f"{self.objects_path}/{segment(appointment_id)}/associations/{segment(to_object_type)}/"
                f"{segment(to_object_id)}/{segment(type_id)}")
        return self.transport.request("PUT", path).body

    def batch_associate(self, inputs: Sequence[dict], *, to_object_type: str, batch_size: int = BATCH_LIMIT,
                        observer: ChunkObserver | None = None) -> BatchResult:
        """Associate many pairs: ``inputs`` are ``{"appointment_id", "to_object_id", "association_type_id"?}``."""
        default = self.default_association_type_id(to_object_type) \
            if any(not item.get("association_type_id") for item in inputs) else 0

        def pair(item: dict) -> dict:
            return {"from": {"id": str(item["appointment_id"])},
                    **association_input(item["to_object_id"], item.get("association_type_id") or default)}

        endpoint = BatchEndpoint(
            "associate", self.associations_path(to_object_type) + "/batch/create", error_keys=("pair",),
            body=lambda items: {"inputs": [pair(item) for item in items]},
            key=lambda item: f"{item['appointment_id']}->{item['to_object_id']}",
            result_key=lambda result: f"{result.get('fromObjectId')}->{result.get('toObjectId')}",
            explain=lambda errors: [explain_association_error(error, to_object_type) for error in errors])
        return self.batches.run(endpoint, list(inputs), batch_size, observer=observer)
