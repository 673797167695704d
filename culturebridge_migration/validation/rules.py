"""Data rules as set-based SQL over Phase 2: each returns the Bubble ids of the rows that break it.

Most are derived from the field table, so a rule and the mapping it re-checks cannot disagree:
- a field with a `rule` name re-checks that field's constraints (range, e-mail form) on every row;
- every entity with references gets `no_orphaned_<entity>`: each reference points at an existing row.
The rest are business rules about relations between tables, written here once.

Severity:
- ERROR: Phase 2 is wrong or incomplete (broken references, values the app cannot handle).
  Cutting over with it would break the app or lose data.
- WARN: Phase 2 holds exactly what Bubble held, but Bubble's data itself needs a person's look
  (a client without a profile, a confirmed booking nobody paid). It does not stop cutover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import sql

from culturebridge_migration.loading.schema import field_checks
from culturebridge_migration.mapping.entities import BOOKING_STATUS, ENTITIES, ROLE, Entity, Field, Kind, load_order


@dataclass(frozen=True)
class Rule:
    name: str
    entity: str  # the asset the check is on: the one whose load completes the data it looks at
    severity: str  # "ERROR" or "WARN"
    description: str  # for the asset-check dashboard, in words a non-engineer understands
    query: str  # returns offending rows' keys (see _key) as bubble_id; {app} is the application schema


def _table(entity: Entity) -> str:
    return "{app}." + sql.Identifier(entity.table).as_string()


def _key(alias: str) -> str:
    """A row's name in a check: its Bubble id, or for a row the app created (no Bubble id) its Phase 2 id."""
    return f"coalesce({alias}.bubble_id, 'phase2 id ' || {alias}.id) AS bubble_id"


def field_rule(entity: Entity, spec: Field) -> Rule:
    """Every row meets the field's constraints, as the table's CHECK constraints state them."""
    column = sql.Identifier(spec.column).as_string()
    if spec.kind is Kind.EMAIL:
        what = "a well-formed, lower-case email address (people log in with it)"
    else:
        what = spec.bounds.describe() if spec.bounds else "valid"
    broken = f"NOT ({' AND '.join(field_checks(spec))})"
    where = f"{column} IS NULL OR {broken}" if spec.not_null else broken
    label = spec.label or spec.column.replace("_", " ")
    return Rule(
        spec.rule or f"valid_{spec.column}",
        entity.name,
        "ERROR",
        f"Every {entity.noun}'s {label} is {what}.",
        f"SELECT {_key('t')} FROM {_table(entity)} t WHERE {where}",
    )


def orphan_rule(entity: Entity, entities: Mapping[str, Entity]) -> Rule:
    """Every reference of the entity's rows points at a row that exists in Phase 2."""
    parts, labels = [], []
    for spec in entity.refs:
        column = sql.Identifier(spec.column).as_string()
        present = "" if spec.required else f"c.{column} IS NOT NULL AND "
        parts.append(
            f"SELECT {_key('c')} FROM {_table(entity)} c LEFT JOIN {_table(entities[spec.ref or ''])} p"
            f" ON p.id = c.{column} WHERE {present}p.id IS NULL"
        )
        labels.append((spec.label or spec.source.lower()) + ("" if spec.required else ", when it has one,"))
    subject = " and ".join(labels)
    verb = "exist" if len(labels) > 1 else "exists"
    return Rule(
        f"no_orphaned_{entity.name}",
        entity.name,
        "ERROR",
        f"Every {entity.noun}'s {subject} {verb} in Phase 2.",
        " UNION ".join(parts),
    )


def derived_rules(entities: Mapping[str, Entity]) -> list[Rule]:
    rules = []
    for name in load_order(entities):
        entity = entities[name]
        rules += [field_rule(entity, spec) for spec in entity.fields if spec.rule]
        if entity.refs:
            rules.append(orphan_rule(entity, entities))
    return rules


# Relations Bubble never enforced: Phase 2 holds them faithfully, a person decides.
BUSINESS_RULES: tuple[Rule, ...] = (
    Rule(
        "clients_have_profiles",
        "client_profiles",
        "WARN",
        "Every user with the client role has a client profile (Bubble allowed clients without one).",
        f"SELECT {_key('u')} FROM {{app}}.users u WHERE u.role = '{ROLE['Client']}' "
        "AND NOT EXISTS (SELECT 1 FROM {app}.client_profiles p WHERE p.user_id = u.id)",
    ),
    Rule(
        "coaches_have_profiles",
        "coach_profiles",
        "WARN",
        "Every user with the coach role has a coach profile (Bubble allowed coaches without one).",
        f"SELECT {_key('u')} FROM {{app}}.users u WHERE u.role = '{ROLE['Coach']}' "
        "AND NOT EXISTS (SELECT 1 FROM {app}.coach_profiles p WHERE p.user_id = u.id)",
    ),
    Rule(
        "confirmed_bookings_have_payment",
        "payments",
        "WARN",
        "Every confirmed booking has a payment (Bubble allowed confirming without one).",
        f"SELECT {_key('b')} FROM {{app}}.bookings b WHERE b.status = '{BOOKING_STATUS['Confirmed']}' "
        "AND NOT EXISTS (SELECT 1 FROM {app}.payments p WHERE p.booking_id = b.id)",
    ),
)

RULES: tuple[Rule, ...] = (*derived_rules(ENTITIES), *BUSINESS_RULES)


def rules_for(entity: Entity) -> list[Rule]:
    return [rule for rule in RULES if rule.entity == entity.name]
