"""Shared fixtures: a real PostgreSQL server (DATABASE_URL, or an embedded one), fresh databases, the
bundled sample served by the local Bubble server, and the migration graph run in process.

Tests reach every helper through a fixture here, never by importing another test module.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import hypothesis
import psycopg
import pytest
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from culturebridge_migration.definitions import ALL_ASSETS
from culturebridge_migration.defs.event_log import EventLogResource
from culturebridge_migration.defs.resources import BubbleResource, FilesResource, MigrationSettings, PostgresResource
from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import files_for, sample_files
from culturebridge_migration.loading.embedded_server import EMBEDDED_DIR, embedded_server, stop_embedded_server
from culturebridge_migration.mapping.entities import BUILT_IN_KEYS, ENTITIES
from culturebridge_migration.mapping.mapper import RefLookup, map_records
from culturebridge_migration.sources.sample_data import SampleData, generate_sample

API_KEY = "test-api-key"
FILES_PUBLIC_URL = "https://files.culturebridge.test"
DAGSTER = Path(sys.executable).with_name("dagster")  # the venv's, as the README's commands run it


# -- PostgreSQL -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """DATABASE_URL when set; otherwise an embedded PostgreSQL for the whole session.

    Its folder is its own, not under pytest's basetemp: pytest prunes old basetemps, which would
    pull the data directory from under a server that another test session still runs.
    """
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    folder = Path(tempfile.mkdtemp(prefix="cb-pg-"))
    let_embedded_server_pass(folder, Path(tempfile.gettempdir()))
    server = embedded_server(folder / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


class Databases:
    """New, empty databases on the test server; every one is dropped when its owner is done."""

    def __init__(self, server_url: str) -> None:
        self.server_url, self.names = server_url, []

    def create(self) -> str:
        name = f"cb_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        params = conninfo_to_dict(self.server_url)
        params["dbname"] = name
        return make_conninfo(**params)

    def drop_all(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            for name in self.names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def new_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of new, empty databases on the server; all are dropped after the test."""
    databases = Databases(pg_server_url)
    yield databases.create
    databases.drop_all()


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    return new_database()


@pytest.fixture(scope="module")
def module_database(pg_server_url: str) -> Iterator[str]:
    """One database for a module's read-only tests of one migrated graph."""
    databases = Databases(pg_server_url)
    yield databases.create()
    databases.drop_all()


def table_rows(conn: psycopg.Connection, table: str) -> list[tuple]:
    return conn.execute(f"SELECT * FROM public.{table} ORDER BY bubble_id").fetchall()


def _checksums(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        return {
            e.table: hashlib.sha256(repr(table_rows(conn, e.table)).encode()).hexdigest() for e in ENTITIES.values()
        }


@pytest.fixture(scope="session")
def checksums() -> Callable[[str], dict[str, str]]:
    """A checksum of every Phase 2 table's rows: equal checksums, equal tables."""
    return _checksums


# -- Bubble dates ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def base_time() -> datetime:
    """Where hand-made Bubble records' dates start (2025-01-01 UTC); tests count minutes from it."""
    return datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def later_date() -> str:
    """A Bubble date after every sample record's: an edit, or a new record, since the last run."""
    return "2027-01-01T00:00:00.000Z"


# -- the local Bubble server ----------------------------------------------------------------------
def bubble_data(sample: SampleData) -> dict[str, list[dict]]:
    return {ENTITIES[name].bubble_type: records for name, records in sample.records.items()}


@pytest.fixture(scope="session")
def sample() -> SampleData:
    """The bundled sample: a few hundred users, with bad records of every reject kind."""
    return generate_sample()


@pytest.fixture
def bubble_server(sample: SampleData) -> Iterator[FakeBubble]:
    """The sample, served by the local Bubble server over HTTP."""
    with FakeBubble(bubble_data(sample), files=sample_files(sample), api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def serve() -> Callable[..., FakeBubble]:
    """A local Bubble server for a data set of the test's own (call it in a `with`)."""

    def start(data: dict[str, list[dict]], **options: object) -> FakeBubble:
        options.setdefault("files", files_for(data))  # the files the records link, as Bubble's CDN serves them
        return FakeBubble(data, api_key=API_KEY, **options)

    return start


# -- the graph, in process ------------------------------------------------------------------------
class Graph:
    """The migration graph as a test runs it: resources for one database and folder, one Dagster instance."""

    def __init__(self, database_url: str, folder: Path, bubble: BubbleResource, **settings: object) -> None:
        self.database_url, self.folder, self.bubble = database_url, folder, bubble
        self.instance = dg.DagsterInstance.ephemeral()
        self.settings = {"sample_seed": 7, "sample_size": 50, **settings}

    @property
    def resources(self) -> dict[str, dg.ConfigurableResource]:
        return {
            "postgres": PostgresResource(database_url=self.database_url),
            "bubble": self.bubble,
            "settings": MigrationSettings(
                export_dir=str(self.folder / "exports"), report_dir=str(self.folder / "reports"), **self.settings
            ),
            # One public base URL for every test's copies: two runs on the same data link the same URLs.
            "files": FilesResource(target=str(self.folder / "files"), public_base_url=FILES_PUBLIC_URL),
            "event_log": EventLogResource(),
        }

    def materialize(self, assets: list | None = None, **options: object) -> dg.ExecuteInJobResult:
        """`assets` (default: the whole graph), with dg.materialize's options (selection, run_config, tags)."""
        return dg.materialize(
            assets or ALL_ASSETS, resources=self.resources, instance=self.instance, raise_on_error=False, **options
        )

    def with_settings(self, **settings: object) -> Graph:
        """The same database, folder and instance, with other settings."""
        other = Graph(self.database_url, self.folder, self.bubble, **{**self.settings, **settings})
        other.instance = self.instance
        return other


def api(server: FakeBubble, **options: object) -> BubbleResource:
    options.setdefault("files_base_url", server.files_url)  # Bubble's files, as the local server serves them
    return BubbleResource(api_url=server.url, api_key=API_KEY, max_retries=2, **options)


@pytest.fixture(scope="session")
def graph_for() -> Callable[..., Graph]:
    """graph_for(database_url, folder, server_or_resource, **settings): the graph on that database and Bubble."""

    def make(database_url: str, folder: Path, source: FakeBubble | BubbleResource, **settings: object) -> Graph:
        bubble = api(source) if isinstance(source, FakeBubble) else source
        return Graph(database_url, folder, bubble, **settings)

    return make


@pytest.fixture
def graph(database_url: str, tmp_path: Path, bubble_server: FakeBubble, graph_for: Callable[..., Graph]) -> Graph:
    """The graph on a fresh database, reading the sample from the local Bubble server."""
    return graph_for(database_url, tmp_path, bubble_server)


# -- the CLI --------------------------------------------------------------------------------------
def start_dagster(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """`dagster ARGS` started as a user would, its errors kept; in its own process group, so that kill -9 of
    the group reaches its step processes too."""
    return subprocess.Popen(
        [str(DAGSTER), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def let_embedded_server_pass(folder: Path, top: Path) -> None:
    """As root, let the embedded server's user pass through `folder` and the folders above it below `top`.

    The test's own folders, which pytest and tempfile make 0700: what the README asks a root user to do
    for the folders above the project, which the migration never does by itself.
    """
    if os.geteuid() != 0:
        return
    for each in (folder, *folder.parents):
        if each == top or top not in each.parents:
            return
        each.chmod(each.stat().st_mode | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory to run the CLI in, as a new user would; its embedded server is stopped after."""
    let_embedded_server_pass(tmp_path, Path(tempfile.gettempdir()))
    yield tmp_path
    stop_embedded_server(tmp_path / EMBEDDED_DIR)


@pytest.fixture(scope="session")
def user_env() -> Callable[..., dict[str, str]]:
    """The environment a user's shell has: none of the project's variables, plus the ones given."""

    def env(**variables: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("BUBBLE_", "MIGRATION_", "DAGSTER_"))}
        clean.pop("DATABASE_URL", None)
        return clean | variables

    return env


@pytest.fixture
def phase2_env(database_url: str) -> dict[str, str]:
    """The variables a real Phase 2 run needs: its database, and the URL that serves the copied files."""
    return {"DATABASE_URL": database_url, "MIGRATION_FILES_PUBLIC_URL": FILES_PUBLIC_URL}


# -- an app our generator never made ----------------------------------------------------------------
def _thing(bubble_id: str, minute: int, **fields: object) -> dict:
    stamp = f"2025-03-0{1 + minute // 60}T10:{minute % 60:02d}:00.000Z"
    return {"_id": bubble_id, "Created Date": stamp, "Modified Date": stamp, "Created By": "admin_user_app", **fields}


def _real_app() -> dict[str, list[dict]]:
    """Hand-written records with the quirks real Bubble apps have, and fields DESIGN.md never listed."""
    home = {"address": "Unter den Linden 1, Berlin", "lat": 52.517, "lng": 13.388}
    return {
        "user": [
            _thing(
                "u1",
                1,
                authentication={"email": {"email": "Ana@Example.com", "email_confirmed": True}},
                user_signed_up=True,
                Role="Client",
                **{"First Name": "Ana", "Nickname": "Annie", "Loyalty Points": 40, "Badges": ["early"], "Home": home},
            ),
            _thing(
                "u2",
                2,
                authentication={"Google": {"email": "bo@gmail.com", "id": "g-1234"}},
                user_signed_up=True,
                Role="Coach",
                **{"First Name": "Bo", "Nickname": "Bobo", "Slug": "bo"},
            ),
            _thing("u3", 3, authentication={}, user_signed_up=False, Role="Client"),  # a temporary user: no email
            _thing(
                "u4",
                4,
                authentication={"email": {"email": "cy@example.com", "email_confirmed": False}},
                user_signed_up=True,
                Role="Coach",
            ),
        ],
        "clientprofile": [_thing("cp1", 10, User="u1", Goals=["Find work"], **{"Quiz Answers": '{"q": 1}'})],
        "coachprofile": [
            _thing(
                "kp1", 11, User="u2", **{"Hourly Rate": 80, "Certifications": ["ICF", "EMCC"], "Intro Video": "//v"}
            ),
            _thing("kp2", 12, User="u4", **{"Hourly Rate": 60}),
        ],
        "booking": [
            _thing(
                "b1",
                20,
                Client="u1",
                Coach="u2",
                Status="Confirmed",
                Notes="bring the visa\x00 papers",
                **{"Session Start": "2025-04-01T09:00:00.000Z", "Duration Minutes": 60, "Room": "3B"},
            ),
            _thing(
                "b2",
                21,
                Client="u1",
                Coach="u4",
                Status="Pending",
                **{"Session Start": "2025-04-02T09:00:00.000Z", "Duration Minutes": 30, "Reminder Sent": True},
            ),
            _thing(
                "b3",
                22,
                Client="u1",
                Coach="u2",
                Status="Done",
                **{"Session Start": "2025-04-03T09:00:00Z", "Duration Minutes": 45},
            ),
        ],
        "payment": [_thing("p1", 30, Booking="b1", Amount=80, Status="Paid")],
        "post": [_thing("po1", 40, Author="u1", Title="Hello", Body="First!")],
        "comment": [_thing("c1", 41, Post="po1", Author="u2", Body="Welcome")],
        "resource": [_thing("r1", 50, Title="Visa guide", **{"Resource Type": "Guide", "Uploaded By": "u2"})],
        "review": [_thing("rv1", 60, Booking="b1", Stars=5, Text="Great"), _thing("rv2", 61, Booking="b3", Stars=4)],
    }


@pytest.fixture
def real_app() -> SimpleNamespace:
    """An app not written with this project: extra fields, a ninth type, a NUL, a Google sign-up, a user
    without email. `data` by Bubble type; `field_kinds` says what its /meta knows that values cannot."""
    kinds = {"user": {"Role": "option.os_role"}, "booking": {"Status": "option.os_status"}}
    return SimpleNamespace(data=_real_app(), field_kinds=kinds)


# -- hostile values (property-based) ----------------------------------------------------------------
# Bounded in the fast tier; HYPOTHESIS_PROFILE=long runs ten times as many examples (the full suite's
# nightly run, when there is time for it).
hypothesis.settings.register_profile("fast", max_examples=200, deadline=None)
hypothesis.settings.register_profile("long", max_examples=2_000, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


def _nested(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


_ANY_CHARACTER = st.characters(exclude_categories=())  # NUL, controls and lone surrogates included
_PLAUSIBLE = [
    "",
    " ",
    "\x00",
    "\ud800",
    "Client",
    "Confirmed",
    "Paid",
    "2025-11-05T14:03:22.120Z",
    "Nov 5, 2025 2:03 pm",
    "javascript:alert(document.cookie)",
    "//s3.amazonaws.com/appforest_uf/f1/x.png",
    "https://example.com/a b",
    "NaN",
    "1e999",
    "$1,234.50",
    '{"a": [1, 2]}',
    "$2b$12$" + "a" * 53,
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(_ANY_CHARACTER, max_size=20)
    | st.sampled_from(_PLAUSIBLE)
)
_HUGE = st.builds(
    lambda size, character: character * size,
    st.sampled_from([129, 201, 501, 2_049, 50_001, 100_001, 1_000_000]),
    st.sampled_from(["a", "é", "\x00", "😀", " "]),
)
# Nested past the limit, not past what hypothesis can print of a failing example (the 10,000-deep
# values of the issue have tests of their own).
_DEEP = st.builds(_nested, st.integers(60, 300)) | st.builds(lambda n: "[" * n + "]" * n, st.integers(60, 20_000))
_VALUES = (
    st.recursive(
        _SCALARS,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=12,
    )
    | _HUGE
    | _DEEP
)


@pytest.fixture(scope="session")
def hostile() -> SimpleNamespace:
    """Strategies of hostile Bubble values and records: `values`; `records(entity)`, lists of records of
    the entity, each a valid record with some keys (any field, `_id` and the built-ins included, or a new
    one) holding any JSON value; `bases` (valid records of a small sample) and `refs` (its ids)."""
    small = generate_sample(12, bad_records=False, legacy_password_share=0.0)
    refs = {name: RefLookup({r["_id"]: i for i, r in enumerate(records, 1)}) for name, records in small.records.items()}

    # The records hostile values are planted in: those of the sample that load as they are.
    bases = {
        name: [r for r in records if map_records(ENTITIES[name], [r], refs).rows]
        for name, records in small.records.items()
    }

    def keys(name: str) -> st.SearchStrategy[str]:
        sources = [p for f in ENTITIES[name].fields for p in (f.source, f.source.split(".")[0])]
        return st.sampled_from([*dict.fromkeys(sources), *BUILT_IN_KEYS]) | st.text(max_size=6)

    def records(name: str, max_size: int = 4) -> st.SearchStrategy[list[dict]]:
        one = st.tuples(st.sampled_from(bases[name]), st.dictionaries(keys(name), _VALUES, max_size=4))
        return st.lists(one, min_size=1, max_size=max_size).map(
            lambda drawn: [{**base, "_id": f"{base['_id']}h{i}", **changes} for i, (base, changes) in enumerate(drawn)]
        )

    return _Strategies(values=_VALUES, records=records, bases=bases, refs=refs)


class _Strategies(SimpleNamespace):
    def __repr__(self) -> str:  # what a failing example prints: the records it drew, not the whole sample
        return "hostile"
