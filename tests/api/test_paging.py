"""Paging past search's 10,000-result cap: the keyset paginator on its own, then against the simulator."""

from __future__ import annotations

from airflow_provider_appointments.api.paging import KeysetPaginator, paginate
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook


def test_keyset_paginator_adds_the_id_filter_to_every_group_and_stops_on_a_short_page():
    groups = [{"filters": [{"propertyName": "a", "operator": "EQ", "value": "1"}]}, {"filters": []}]
    paginator = KeysetPaginator(groups, page_size=2)
    request = paginator.first_request({"properties": ["a"], "after": "400"})
    assert request.body["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    assert "after" not in request.body and request.body["filterGroups"] == groups  # no id filter yet
    pages = iter([{"results": [{"id": "5"}, {"id": "9"}], "total": 3}, {"results": [{"id": "12"}], "total": 1}])
    sent = []

    def send(page_request):
        sent.append([list(group["filters"]) for group in page_request.body["filterGroups"]])
        return next(pages)

    answers = list(paginate(send, request, paginator))
    assert [len(answer["results"]) for answer in answers] == [2, 1]
    above_9 = {"propertyName": "hs_object_id", "operator": "GT", "value": "9"}
    assert sent[1] == [[groups[0]["filters"][0], above_9], [above_9]]
    assert groups[0]["filters"] == [{"propertyName": "a", "operator": "EQ", "value": "1"}]  # the caller's groups kept


def test_keyset_paginator_needs_no_empty_page_after_a_full_last_one():
    paginator = KeysetPaginator([], page_size=2)
    paginator.update_state({"results": [{"id": "1"}, {"id": "2"}], "total": 2})
    assert not paginator.has_next


def test_search_all_returns_every_match_past_the_10000_cap_exactly_once(hubspot_simulator_factory, monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=12_500, requests_per_10s=0, search_requests_per_second=0)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    client = HubSpotAppointmentsHook().get_conn()
    not_cancelled = {"propertyName": "hs_appointment_status", "operator": "NEQ", "value": "CANCELED"}
    found = [record["id"] for page in client.iter_search_all([{"filters": [not_cancelled]}]) for record in page]
    expected = {str(r.id) for r in sim.store.appointments(include_archived=False)
                if r.properties.get("hs_appointment_status") != "CANCELED"}
    assert len(expected) > 10_000
    assert len(found) == len(set(found)) and set(found) == expected


def test_modified_window_paginator_restarts_at_the_cap_from_the_last_timestamp_without_repeats():
    from airflow_provider_appointments.api.paging import ModifiedWindowPaginator

    # Six records; ids 2 and 3 share a timestamp across the restart. Cap 4, pages of 2.
    records = [{"id": str(i), "properties": {"hs_lastmodifieddate": str(stamp)}}
               for i, stamp in enumerate([10, 20, 30, 30, 40, 50])]

    def send(request):
        lower = int(next(f["value"] for f in request.body["filterGroups"][0]["filters"] if f["operator"] == "GTE"))
        matching = [r for r in records if int(r["properties"]["hs_lastmodifieddate"]) >= lower]
        start = int(request.body.get("after") or 0)
        page = matching[start:start + 2]
        more = start + 2 < len(matching)
        return {"results": page, "paging": {"next": {"after": str(start + 2)}} if more else {}}

    paginator = ModifiedWindowPaginator(0, None, page_size=2, cap=4)
    found = [record["id"] for answer in paginate(send, paginator.first_request({}), paginator)
             for record in paginator.fresh(answer["results"])]
    assert found == ["0", "1", "2", "3", "4", "5"]
    assert paginator.lower == 30  # it restarted from the last timestamp it had seen
