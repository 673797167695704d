"""The bundled sample as FakeBubble serves it: its things by Data API type, its files, its schema hints."""

from __future__ import annotations

from culturebridge_migration.fake_bubble.files import file_key, is_bubble_file_url
from culturebridge_migration.fake_bubble.synthetic_files import synthetic_file
from culturebridge_migration.mapping.entities import ENTITIES, Kind
from culturebridge_migration.sources.sample_data import SampleData

# How the sample app's Bubble editor names its types (what /meta shows as their display).
SAMPLE_TYPE_DISPLAYS = {
    "users": "User",
    "client_profiles": "Client Profile",
    "coach_profiles": "Coach Profile",
    "bookings": "Booking",
    "payments": "Payment",
    "posts": "Post",
    "comments": "Comment",
    "resources": "Resource",
}


def sample_field_kinds() -> dict[str, dict[str, str]]:
    """What a Data API client cannot tell from the values: the option sets, from the field table's enumerations."""
    return {
        entity.bubble_type: {f.source: f"option.os_{f.column}" for f in entity.fields if f.kind is Kind.ENUM}
        for entity in ENTITIES.values()
        if any(f.kind is Kind.ENUM for f in entity.fields)
    }


def sample_files(sample: SampleData) -> dict[str, bytes]:
    """Every Bubble-hosted file the sample's records reference (profile photos, resource files), keyed by
    "host/path", as small valid JPEGs and PDFs: the same bytes for the same sample."""
    return files_for(sample.records)


def files_for(data: dict[str, list[dict]]) -> dict[str, bytes]:
    """A generated file for every Bubble-hosted file URL the records of `data` (by type) reference."""
    urls = {url for records in data.values() for record in records for url in _file_urls(record)}
    return {file_key(url): synthetic_file(file_key(url)) for url in sorted(urls)}


def _file_urls(record: dict) -> list[str]:
    values = [v for value in record.values() for v in (value if isinstance(value, list) else [value])]
    return [v for v in values if is_bubble_file_url(v)]


def sample_server_args(sample: SampleData) -> dict:
    """FakeBubble's keyword arguments for a generated sample: `FakeBubble(**sample_server_args(s), api_key=...)`."""
    return {
        "data": {ENTITIES[name].bubble_type: records for name, records in sample.records.items()},
        "files": sample_files(sample),
        "field_kinds": sample_field_kinds(),
        "type_displays": {ENTITIES[name].bubble_type: display for name, display in SAMPLE_TYPE_DISPLAYS.items()},
    }
