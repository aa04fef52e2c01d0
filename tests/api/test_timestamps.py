"""The one moment parser: HubSpot's answers and users' date columns read the same forms the same way."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from airflow_provider_appointments.api.timestamps import parse_moment, parse_moments, to_epoch_ms
from airflow_provider_appointments.errors import HubSpotInputError


def test_a_column_of_hubspot_moments_in_either_form():
    parsed = parse_moments(["2026-03-01T09:30:00.123Z", "1772357400123", None, "2026-03-01",
                            " 2026-03-01T10:00:00+01:00 "])
    assert parsed.tolist()[:2] == [pd.Timestamp("2026-03-01T09:30:00.123Z")] * 2
    assert parsed.isna().tolist() == [False, False, True, False, False]
    assert parsed.iloc[3] == pd.Timestamp("2026-03-01T00:00:00Z")  # naive is UTC
    assert parsed.iloc[4] == pd.Timestamp("2026-03-01T09:00:00Z")


@pytest.mark.parametrize("value", ["01/03/2026", "2026-02-30", "12345", "next tuesday", ""])
def test_what_is_neither_form_or_no_such_day_is_not_a_moment(value):
    assert parse_moments([value]).isna().all()


def test_one_value_and_its_epoch_milliseconds():
    assert parse_moment("2026-03-01T00:00:00Z") == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert parse_moment(datetime(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert parse_moment("") is None
    assert to_epoch_ms("2026-03-01T00:00:00Z") == to_epoch_ms("1772323200000") == 1772323200000
    with pytest.raises(HubSpotInputError, match="modified_after must be an ISO 8601"):
        parse_moment("01/03/2026", "modified_after")
