"""Which parts of a Bubble record the field table maps, which it ignores on purpose, and what is left over.

Nothing of Phase 1 is left behind: every key of every record is mapped to a column, listed as
ignored in the field map, or kept verbatim in the row's `bubble_extra`. Keys are matched as paths:
`authentication.email.email` maps one leaf of the `authentication` object, so a Google sign-up's
`authentication.Google.id` is left over (and kept) while its mapped `authentication.Google.email` is
not. A `*` in a path matches any one key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from culturebridge_migration.mapping.entities import BUILT_IN_KEYS, PHASE2_ID_FIELD, UNREADABLE_KEY, Entity

_WHOLE = True  # a tree node meaning: this key and everything under it is covered
Tree = dict[str, "Tree | bool"]


def _add(tree: Tree, path: str) -> None:
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if child is _WHOLE:
            return
        node = child  # type: ignore[assignment]
    node[parts[-1]] = _WHOLE


class Coverage:
    """The covered keys of one entity's records: its fields' sources and fallbacks, the built-ins, the ignored."""

    def __init__(self, entity: Entity) -> None:
        self.tree: Tree = {}
        # A stand-in's note is the export's, not Bubble's; phase2_id is the fallback's copy of the row's own id.
        paths = [*BUILT_IN_KEYS, UNREADABLE_KEY, PHASE2_ID_FIELD, *entity.ignored]
        for spec in entity.fields:
            paths += [spec.source] + ([spec.fallback] if spec.fallback else [])
        for path in paths:
            if "." in path:
                self.tree.setdefault(path, _WHOLE)  # a key Bubble writes with a dot in it is covered as written
            _add(self.tree, path)
        self.whole = frozenset(k for k, node in self.tree.items() if node is _WHOLE)

    def uncovered(self, record: Mapping[str, object]) -> Iterator[tuple[str, object]]:
        """(dotted path, value) of every part of `record` the field table neither maps nor ignores."""
        if record.keys() <= self.whole:
            return  # the common case, decided by one set comparison
        for parts, value in _uncovered(record, self.tree, ()):
            yield ".".join(parts), value

    def extra(self, record: Mapping[str, object]) -> dict[str, object] | None:
        """What the field table leaves over of `record`, nested as Bubble sent it; None when nothing is."""
        if record.keys() <= self.whole:
            return None
        out: dict[str, object] = {}
        for parts, value in _uncovered(record, self.tree, ()):
            node = out
            for part in parts[:-1]:
                node = node.setdefault(part, {})  # type: ignore[assignment]
            node[parts[-1]] = value
        return out or None


def _uncovered(
    value: Mapping[str, object], tree: Tree, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], object]]:
    for key, item in value.items():
        node = tree.get(key, tree.get("*"))
        if node is _WHOLE:
            continue
        if node is None or not isinstance(item, Mapping):
            yield (*path, key), item  # not covered, or covered as an object but Bubble sent something else
        else:
            yield from _uncovered(item, node, (*path, key))  # type: ignore[arg-type]
