"""Property definitions from HubSpot's properties API, as the data side needs them."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
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
    option_labels: tuple[str, ...] = ()  # the options' labels, in the order of `options`
    has_unique_value: bool = False
    read_only: bool = False
    calculated: bool = False

    @property
    def multi_select(self) -> bool:
        """A multiple checkboxes enumeration: its values are ``;``-separated lists of options."""
        return self.type == "enumeration" and self.field_type == "checkbox"

    def option_lookup(self) -> dict[str, str | None]:
        """An option by its value or its label, each folded by `fold` (None: the folded text names two
        options, so it is taken only exactly)."""
        lookup: dict[str, str | None] = {}
        for value, label in zip(self.options, self.option_labels or self.options):
            for name in dict.fromkeys((fold(value), fold(label))):
                lookup[name] = value if lookup.get(name, value) == value else None
        return lookup

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
            option_labels=tuple(str(option.get("label") or option.get("value"))
                                for option in item.get("options") or []),
            has_unique_value=bool(item.get("hasUniqueValue")),
            read_only=bool(metadata.get("readOnlyValue")),
            calculated=bool(item.get("calculated")),
        )


def fold(text: str) -> str:
    """Text as an option's value or label is matched: case-insensitive, spaces, underscores and hyphens
    ignored (``"no show"``, ``"No-Show"`` and ``NO_SHOW`` are one)."""
    return re.sub(r"[\s_\-]+", "", text).casefold()


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

    def require_known(self, names: Sequence[str], parameter: str) -> None:
        """Refuse names that are no appointment property (`parameter` is the argument that listed them),
        each with the closest names: a misspelled property would otherwise read as an all-null column."""
        problems = []
        for name in dict.fromkeys(names):
            if name not in self._by_name:
                close = difflib.get_close_matches(str(name), self.names(), n=3)
                problems.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        if problems:
            verb = "is not an appointment property" if len(problems) == 1 else "are not appointment properties"
            raise HubSpotInputError(f"{parameter}: {'; '.join(problems)} {verb} of this account")

    def arrow_type(self, name: str) -> pa.DataType:
        """The column type of a property in an extract (unknown properties are strings)."""
        definition = self._by_name.get(name)
        return _ARROW_TYPES.get(definition.type, pa.string()) if definition else pa.string()
