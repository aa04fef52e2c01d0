"""Property definitions from HubSpot's properties API, as the data side needs them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa

from airflow_provider_appointments.errors import HubSpotInputError


@dataclass(frozen=True)
class PropertyDefinition:
    """One appointment property: its type decides how values are serialized and typed in extracts."""

    name: str
    label: str
    type: str
    field_type: str
    options: tuple[str, ...] = ()
    has_unique_value: bool = False
    read_only: bool = False
    calculated: bool = False

    @property
    def multi_select(self) -> bool:
        """A multiple checkboxes enumeration: its values are ``;``-separated lists of options."""
        return self.type == "enumeration" and self.field_type == "checkbox"

    @classmethod
    def from_api(cls, item: dict) -> PropertyDefinition:
        """A definition from one ``Property`` of HubSpot's properties API."""
        metadata = item.get("modificationMetadata") or {}
        return cls(
            name=item["name"],
            label=item.get("label") or item["name"],
            type=item.get("type") or "string",
            field_type=item.get("fieldType") or "text",
            options=tuple(str(option.get("value")) for option in item.get("options") or []),
            has_unique_value=bool(item.get("hasUniqueValue")),
            read_only=bool(metadata.get("readOnlyValue")),
            calculated=bool(item.get("calculated")),
        )


_ARROW_TYPES = {
    "number": pa.float64(),
    "datetime": pa.timestamp("ms", tz="UTC"),
    "date": pa.date32(),
    "bool": pa.bool_(),
}


class PropertySchema(Mapping[str, PropertyDefinition]):
    """The account's appointment properties, by name."""

    def __init__(self, definitions: list[PropertyDefinition]) -> None:
        self._by_name = {definition.name: definition for definition in definitions}

    @classmethod
    def from_api(cls, results: list[dict]) -> PropertySchema:
        """A schema from the ``results`` of HubSpot's properties API."""
        return cls([PropertyDefinition.from_api(item) for item in results])

    def __getitem__(self, name: str) -> PropertyDefinition:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def unique_properties(self) -> list[str]:
        """Properties with ``hasUniqueValue``: those that can identify a record (``idProperty``)."""
        return [name for name, definition in self._by_name.items() if definition.has_unique_value]

    def require_unique(self, name: str, parameter: str) -> None:
        """Refuse `name` as a key (`parameter` is the argument that named it) unless it has unique values."""
        unique = self.unique_properties()
        if name not in unique:
            raise HubSpotInputError(f"{parameter} {name!r} is not a unique-value property; unique properties: {unique}")

    def arrow_type(self, name: str) -> pa.DataType:
        """The column type of a property in an extract (unknown properties are strings)."""
        definition = self._by_name.get(name)
        return _ARROW_TYPES.get(definition.type, pa.string()) if definition else pa.string()
