"""`bubble/schema`: every type and field the Bubble app has, and which of them the field table maps.

From Bubble's /meta when the app exposes it (the export step keeps what it answered), else from the
keys the exported records carry; the asset says which, and why.
"""

import json
from pathlib import Path

import dagster as dg

from culturebridge_migration.defs.exports import EXPORT_GROUP, EXTRA_TYPES, export_key
from culturebridge_migration.defs.resources import MigrationSettings, PostgresResource
from culturebridge_migration.mapping.entities import ENTITIES
from culturebridge_migration.sources import schema as bubble_schema
from culturebridge_migration.sources.export_run import read_meta
from culturebridge_migration.sources.export_store import ExportManifest

SCHEMA = dg.AssetKey(["bubble", "schema"])
SCHEMA_FILE = "bubble_schema.json"


def discovered_schema(export_dir: str | Path) -> bubble_schema.BubbleSchema:
    """The app's schema: /meta as the last export saw it, or the exported records' keys when it had none."""
    document, note = read_meta(export_dir)
    return bubble_schema.app_schema(document, note, lambda: _exported_keys(export_dir), "the exported records")


def _exported_keys(export_dir: str | Path) -> dict[str, dict[str, int]]:
    keys: dict[str, dict[str, int]] = {}
    for path in sorted(Path(export_dir).glob("*.manifest.json")):
        manifest = ExportManifest(**json.loads(path.read_text()))
        keys.setdefault(manifest.bubble_type, {}).update(manifest.fields)
    return keys


@dg.asset(
    key=SCHEMA,
    group_name=EXPORT_GROUP,
    deps=[*(export_key(name) for name in ENTITIES), EXTRA_TYPES],
    kinds={"bubble", "json"},
    description="Every type and field the Bubble app has (from its /meta, or learned from the records), "
    f"and which of them the field table maps; written to MIGRATION_EXPORT_DIR/{SCHEMA_FILE}.",
)
def bubble_schema_asset(
    context: dg.AssetExecutionContext, postgres: PostgresResource, settings: MigrationSettings
) -> dg.MaterializeResult:
    with postgres.writer(context, settings.writer_wait_seconds):  # a step of the run: it counts itself done
        schema = discovered_schema(settings.export_dir)
    if schema.note:
        context.log.warning(schema.note)
    coverage = bubble_schema.coverage_of(schema, settings.entities())
    path = Path(settings.export_dir) / SCHEMA_FILE
    path.write_text(json.dumps({"schema": schema.as_json(), "coverage": coverage}, indent=2, ensure_ascii=False))
    return dg.MaterializeResult(
        metadata={
            "source": schema.source,
            "types": len(schema.types),
            "types_not_migrated": dg.MetadataValue.json(sorted(n for n, t in coverage.items() if t["entity"] is None)),
            "path": dg.MetadataValue.path(str(path.resolve())),
            "coverage": dg.MetadataValue.md(_markdown(coverage)),
        }
    )


def _markdown(coverage: dict[str, dict]) -> str:
    lines = ["| Bubble type | migrated as | fields mapped | unmapped (kept) | ignored |", "|---|---|---|---|---|"]
    for name, entry in coverage.items():
        states = [f["state"] for f in entry["fields"].values()]
        unmapped = [d for d, f in entry["fields"].items() if f["state"].startswith(("unmapped", "kept"))]
        lines.append(
            f"| {name} | {entry['entity'] or '(kept verbatim)'} | {states.count('mapped')} "
            f"| {len(unmapped)} {', '.join(unmapped[:5])} | {states.count('ignored')} |"
        )
    return "\n".join(lines)


DISCOVERY_ASSETS = [bubble_schema_asset]
