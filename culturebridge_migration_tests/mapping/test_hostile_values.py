"""Property-based: any JSON value in any field of any type, `_id` included, through the team's fixes and the
mapper, ends as a row or a reject. Pure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culturebridge_migration.mapping.corrections import Correction, EntityFixes
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.mapping.mapper import map_records
from culturebridge_migration.mapping.rejects import RejectReason
from culturebridge_migration.mapping.values import MAX_ID_LENGTH
from culturebridge_migration.validation.export_digest import ExportDigest


@given(data=st.data())
def test_every_record_with_hostile_values_is_a_row_or_a_reject_with_a_reason(
    hostile: SimpleNamespace, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(list(ENTITIES)))
    entity = ENTITIES[name]
    drawn = data.draw(hostile.records(name))
    # The team's fixes come first, as in a load: a value map on a column and a correction of one record.
    spec = data.draw(st.sampled_from(entity.fields))
    fixes = EntityFixes(
        entity,
        "test",
        [Correction(name, str(drawn[0].get("_id")), spec.source, data.draw(hostile.values), was=None)],
        {spec.source: {"Client": "Coach", "": "x"}},
    )
    records = [fixes.apply(record)[0] for record in drawn]
    batch = map_records(entity, records, hostile.refs)
    assert len(batch.rows) + len(batch.rejects) == len(records)  # exported = loaded + rejected
    for reject in batch.rejects:
        assert reject.reason in set(RejectReason) and reject.message and len(reject.message) <= 1_000
        assert len(reject.bubble_id) <= 200 and (reject.value is None or len(reject.value) <= 200)
    for row in batch.rows:
        assert type(row["bubble_id"]) is str and 0 < len(row["bubble_id"]) <= MAX_ID_LENGTH
        for spec in entity.fields:
            value, limit = row[spec.column], spec.length_limit
            if limit is not None and value is not None:  # text, or a list of text: its items together
                assert (len(value) if isinstance(value, str) else sum(map(len, value))) <= limit
    digest = ExportDigest(entity, sample_size=2, seed=1).consume(records)  # what the checks read of the export
    assert digest.count == len(records)


@pytest.mark.parametrize("name", list(ENTITIES))
def test_the_records_hostile_values_are_planted_in_map_to_rows(hostile: SimpleNamespace, name: str) -> None:
    batch = map_records(ENTITIES[name], hostile.bases[name], hostile.refs)
    assert batch.rows and batch.rejects == []
