"""A deterministic generator of CultureBridge data in Bubble's Data API shape.

It makes the bundled sample (a few hundred users with a handful of bad records of every reject
kind) and the benchmark data sets (hundreds of thousands of records, in seconds). Same seed, same
data: no clock, no hash randomness. `planted` lists every bad record and the reject it must cause;
`warnings` the valid records that the WARN checks must find.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from culturebridge_migration.mapping.values import format_bubble_datetime

BASE = datetime(2024, 1, 1, tzinfo=UTC)
ADMIN_CREATOR = "admin_user_culturebridge_test"
CDN_HOST = "9f2c1d8e4b7a6c5d3e2f1a0b9c8d7e6f.cdn.bubble.io"  # an app's file host on Bubble's CDN

# Legacy credentials that were already hashed by the old system (plain text kept here for tests).
STRONG_HASHES = {
    "strong-legacy-1": "$2b$12$dc0qGwWkn36UZ7BmdyJXnutAPjaL/IDkmHUivVVc1VkaQGyiRMxke",
    "strong-legacy-2": "$2b$13$ZG7UlXKy.wesGxQ./9rmO.tAfpHcgkhwb5eM5ksbup7vppgf9PUJi",
}
WEAK_HASH = ("weak-legacy-1", "$2b$10$tce7.U6.zq1ZL6AgMghUduW1dNk1KupggSU1mzhOk7KOzXS1I7HVe")

FIRST = (
    "Ana",
    "Bruno",
    "Chen",
    "Dalia",
    "Emre",
    "Fatima",
    "Goran",
    "Hana",
    "Ivan",
    "Julia",
    "Kofi",
    "Lea",
    "Mateo",
    "Nia",
)
LAST = ("Lima", "Okafor", "Schmidt", "Haddad", "Kowalski", "Tanaka", "Moreau", "Novak", "Silva", "Yilmaz", "Ortiz")
COUNTRIES = ("Germany", "Canada", "Brazil", "India", "Nigeria", "Turkey", "Japan", "Spain", "Kenya", "Mexico")
LANGUAGES = ("English", "German", "Spanish", "Portuguese", "French", "Turkish", "Hindi", "Arabic")
TIMEZONES = ("Europe/Berlin", "America/Toronto", "America/Sao_Paulo", "Asia/Kolkata", "Africa/Lagos", "Asia/Tokyo")
BOOKING_STATUSES = (
    "Pending",
    "Requested",
    "Confirmed",
    "Accepted",
    "Completed",
    "Done",
    "Cancelled",
    "Canceled",
    "Declined",
)
PAID_STATUSES = ("Confirmed", "Accepted", "Completed", "Done")
CONFIRMED = ("Confirmed", "Accepted")  # both become 'confirmed' in Phase 2


@dataclass(frozen=True)
class PlantedReject:
    entity: str
    bubble_id: str
    column: str
    reason: str


@dataclass
class SampleData:
    records: dict[str, list[dict]]
    passwords: dict[str, str]  # user _id -> plain legacy password (never written anywhere by the pipeline)
    planted: list[PlantedReject]
    warnings: dict[str, list[str]] = field(default_factory=dict)


class _Maker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = BASE

    def stamp(self, step_minutes: float = 7) -> tuple[str, str, str]:
        """A new _id and its Created/Modified Dates, later than the previous one."""
        self.clock += timedelta(minutes=step_minutes, milliseconds=self.rng.randrange(1000))
        created = self.clock
        modified = created + timedelta(hours=self.rng.randrange(0, 400))
        ms = int(created.timestamp() * 1000)
        return (
            f"{ms}x{self.rng.randrange(10**17, 10**18)}",
            format_bubble_datetime(created),
            format_bubble_datetime(modified),
        )

    def thing(self, creator: str | None = None, **fields: object) -> dict:
        thing_id, created, modified = self.stamp()
        record = {
            "_id": thing_id,
            "Created Date": created,
            "Modified Date": modified,
            "Created By": creator or ADMIN_CREATOR,
        }
        record.update({k: v for k, v in fields.items() if v is not None})
        return record

    def pick(self, items: tuple | list, k: int = 1) -> list:
        return [self.rng.choice(items)] if k == 1 else self.rng.sample(items, k)


def generate_sample(
    users: int = 300,
    *,
    bookings: int | None = None,
    payments: int | None = None,
    posts: int | None = None,
    comments: int | None = None,
    resources: int | None = None,
    seed: int = 7,
    bad_records: bool = True,
    legacy_password_share: float = 0.01,
) -> SampleData:
    m = _Maker(seed)
    data: dict[str, list[dict]] = {name: [] for name in _ENTITY_NAMES}
    passwords: dict[str, str] = {}

    for i in range(users):
        data["users"].append(_user(m, i, passwords, legacy_password_share))
    if users >= 10:  # legacy hashes from the old system: two strong enough to keep, one too weak
        for user, (plain, hashed) in zip(data["users"][4:6], STRONG_HASHES.items(), strict=True):
            user["Legacy Password"], passwords[user["_id"]] = hashed, plain
        data["users"][6]["Legacy Password"], passwords[data["users"][6]["_id"]] = WEAK_HASH[1], WEAK_HASH[0]
    clients = [u["_id"] for u in data["users"] if u["Role"] == "Client"]
    coaches = [u["_id"] for u in data["users"] if u["Role"] == "Coach"]
    skip_profiles = set(clients[-2:] + coaches[-1:]) if bad_records else set()
    for user in data["users"]:
        if user["_id"] in skip_profiles:
            continue
        if user["Role"] == "Client":
            data["client_profiles"].append(_client_profile(m, user["_id"]))
        elif user["Role"] == "Coach":
            data["coach_profiles"].append(_coach_profile(m, user["_id"]))

    for i in range(bookings if bookings is not None else 2 * users):
        data["bookings"].append(_booking(m, i, m.pick(clients)[0], m.pick(coaches)[0]))
    paid = [b for b in data["bookings"] if b["Status"] in PAID_STATUSES]
    unpaid_confirmed = {b["_id"] for b in [b for b in paid if b["Status"] in CONFIRMED][:3]} if bad_records else set()
    payable = [b for b in paid if b["_id"] not in unpaid_confirmed] or data["bookings"]
    for i in range(payments if payments is not None else len(payable)):
        data["payments"].append(_payment(m, i, payable[i % len(payable)]))

    all_users = [u["_id"] for u in data["users"]]
    for i in range(posts if posts is not None else users // 2):
        data["posts"].append(_post(m, i, m.pick(all_users)[0]))
    post_ids = [p["_id"] for p in data["posts"]]
    for i in range(comments if comments is not None else users):
        data["comments"].append(_comment(m, i, m.pick(post_ids)[0], m.pick(all_users)[0]))
    for i in range(resources if resources is not None else users // 5):
        data["resources"].append(_resource(m, i, m.pick(all_users)[0] if i % 3 else None))

    planted = _plant_bad_records(m, data, passwords) if bad_records else []
    return SampleData(data, passwords, planted, _warnings(data, planted))


_ENTITY_NAMES = ("users", "client_profiles", "coach_profiles", "bookings", "payments", "posts", "comments", "resources")


def _user(m: _Maker, i: int, passwords: dict[str, str], legacy_share: float) -> dict:
    first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
    email = f"{first}.{last}{i}@example.com".lower()
    if i % 17 == 5:
        email = f"  {email.upper()} "  # valid after trim + lower-case
    role = "Admin" if i % 97 == 3 else ("Coach" if i % 4 == 1 else "Client")
    status = ("Active",) * 12 + ("Inactive", "Suspended", "Pending Verification")
    record = m.thing(
        authentication={"email": {"email": email, "email_confirmed": i % 5 != 0}},
        user_signed_up=True,
        **{
            "First Name": first,
            "Last Name": last,
            "Role": role,
            "Account Status": status[i % len(status)],
            "Phone": f"+49 151 {1000000 + i}" if i % 3 else None,
            "Timezone": TIMEZONES[i % len(TIMEZONES)],
            "Profile Photo": f"//s3.amazonaws.com/appforest_uf/f{1690000 + i}/photo.jpg" if i % 4 else None,
        },
    )
    if i in (0, 1, 2) or m.rng.random() < legacy_share:
        plain = f"legacy-{i}-{m.rng.randrange(10**6):06d}"
        record["Legacy Password"], passwords[record["_id"]] = plain, plain
    return record


def _client_profile(m: _Maker, user_id: str) -> dict:
    quiz = {"motivation": m.pick(("career", "family", "study"))[0], "score": m.rng.randrange(1, 10)}
    return m.thing(
        user_id,
        **{
            "User": user_id,
            "Quiz Answers": json.dumps(quiz),
            "Goals": m.pick(("Find a job", "Learn the language", "Open a bank account", "Make friends"), 2),
            "Preferred Languages": m.pick(LANGUAGES, 2),
            "Current Country": m.pick(COUNTRIES)[0],
            "Target Country": m.pick(COUNTRIES)[0],
            "Onboarding Complete": m.rng.random() < 0.7,
        },
    )


def _coach_profile(m: _Maker, user_id: str) -> dict:
    return m.thing(
        user_id,
        **{
            "User": user_id,
            "Bio": "Helps newcomers settle in, find work and feel at home.",
            "Expertise": m.pick(("Visas", "Careers", "Housing", "Language", "Culture"), 2),
            "Languages": m.pick(LANGUAGES, 2),
            "Countries": m.pick(COUNTRIES, 2),
            "Hourly Rate": m.rng.randrange(25, 501),
            "Years Experience": m.rng.randrange(0, 30),
            "Rating": round(m.rng.uniform(0, 5), 1),
            "Verified": m.rng.random() < 0.6,
            "Availability": json.dumps({"mon": ["09:00-12:00"], "thu": ["14:00-18:00"]}),
        },
    )


def _booking(m: _Maker, i: int, client: str, coach: str) -> dict:
    start = BASE + timedelta(days=30 + i % 600, hours=8 + i % 10)
    notes = None if i % 4 else f'Wants to talk about "visa, work permit"\nand housing (#{i})'
    return m.thing(
        client,
        **{
            "Client": client,
            "Coach": coach,
            "Session Start": format_bubble_datetime(start),
            "Duration Minutes": (30, 45, 60, 90)[i % 4],
            "Status": BOOKING_STATUSES[i % len(BOOKING_STATUSES)],
            "Session Type": ("Intro call", "Coaching", "Follow-up")[i % 3],
            "Notes": notes,
            "Meeting Link": f"https://meet.example.com/cb-{i}",
        },
    )


def _payment(m: _Maker, i: int, booking: dict) -> dict:
    return m.thing(
        booking["Client"],
        **{
            "Booking": booking["_id"],
            "Amount": round(m.rng.uniform(25, 300), 2),
            "Currency": None if i % 10 == 0 else ("EUR" if i % 7 == 0 else "USD"),
            "Status": ("Paid", "Succeeded", "Pending", "Failed", "Refunded", "Paid")[i % 6],
            "Stripe Charge ID": f"ch_{m.rng.randrange(16**20):020x}",
            "Paid At": booking["Session Start"],
        },
    )


def _post(m: _Maker, i: int, author: str) -> dict:
    return m.thing(
        author,
        **{
            "Author": author,
            "Title": f"Tips for week {i}",
            "Body": "What helped me most was…",
            "Tags": m.pick(("visa", "jobs", "housing", "language"), 2),
        },
    )


def _comment(m: _Maker, i: int, post: str, author: str) -> dict:
    return m.thing(author, **{"Post": post, "Author": author, "Body": f"Thanks, this helped! ({i})"})


def _resource(m: _Maker, i: int, uploader: str | None) -> dict:
    record = m.thing(
        uploader,
        **{
            "Title": f"Guide #{i}",
            "URL": f"https://culturebridge.example/resources/{i}",
            "Resource Type": ("Article", "Video", "Guide", "Worksheet")[i % 4],
            "Tags": m.pick(("visa", "jobs", "housing"), 1),
            "Uploaded By": uploader,
        },
    )
    if i % 2:  # on Bubble's newer storage; an upload's f-id is its time (here the thing's), its name kept
        name = f"Guide%20{i}%20checklist.pdf" if i % 5 == 3 else f"guide-{i}.pdf"
        record["File"] = f"//{CDN_HOST}/f{record['_id']}/{name}"
    return record


def _plant_bad_records(m: _Maker, data: dict[str, list[dict]], passwords: dict[str, str]) -> list[PlantedReject]:
    """A few bad records of every reject kind, appended after the good ones, plus the rejects they cascade to."""
    planted: list[PlantedReject] = []
    users, clients = data["users"], [u for u in data["users"] if u["Role"] == "Client"]
    coaches = [u for u in data["users"] if u["Role"] == "Coach"]

    def add(entity: str, column: str, reason: str, record: dict) -> dict:
        data[entity].append(record)
        planted.append(PlantedReject(entity, record["_id"], column, reason))
        return record

    def user(email: str, **fields: object) -> dict:
        fields.setdefault("Role", "Client")
        return m.thing(authentication={"email": {"email": email, "email_confirmed": False}}, **fields)

    def booking(client: str, **fields: object) -> dict:
        record = _booking(m, 7, client, coaches[0]["_id"])
        record.update(fields)
        return {k: v for k, v in record.items() if v is not None}

    def payment(booking_id: str, **fields: object) -> dict:
        return {
            **_payment(
                m, 1, {"_id": booking_id, "Client": clients[0]["_id"], "Session Start": "2025-01-01T10:00:00.000Z"}
            ),
            **fields,
        }

    add("users", "email", "missing_required", m.thing(**{"Role": "Client", "First Name": "Nomail"}))
    bad_email = add("users", "email", "invalid_email", user("not-an-email"))
    short_email = add("users", "email", "invalid_email", user("a@b"))
    for original in (users[3], users[8]):
        email = original["authentication"]["email"]["email"].strip().upper()
        add("users", "email", "duplicate_email", user(f" {email}  "))
    add("users", "role", "unknown_enum", user("mentor@example.com", Role="Mentor"))
    plain = "legacy-of-a-rejected-user"
    rejected_with_password = add(
        "users", "role", "unknown_enum", user("mentor2@example.com", Role="Guru", **{"Legacy Password": plain})
    )
    passwords[rejected_with_password["_id"]] = plain

    # Profiles: bad values, and cascades from rejected users.
    profile_user = clients[0]["_id"]
    add(
        "client_profiles",
        "quiz_answers",
        "invalid_json",
        {**_client_profile(m, profile_user), "Quiz Answers": "{not json"},
    )
    add("client_profiles", "user_id", "rejected_reference", _client_profile(m, short_email["_id"]))
    coach = coaches[0]["_id"]
    add("coach_profiles", "hourly_rate", "unparseable_number", {**_coach_profile(m, coach), "Hourly Rate": "fifty"})
    add("coach_profiles", "hourly_rate", "out_of_range", {**_coach_profile(m, coach), "Hourly Rate": 900})
    add("coach_profiles", "rating", "out_of_range", {**_coach_profile(m, coach), "Rating": 7})
    add("coach_profiles", "availability", "invalid_json", {**_coach_profile(m, coach), "Availability": "[1, 2"})

    # Bookings, and a two-level cascade: rejected user -> booking -> payment.
    client = clients[1]["_id"]
    add("bookings", "session_start", "missing_required", booking(client, **{"Session Start": None}))
    add("bookings", "session_start", "unparseable_date", booking(client, **{"Session Start": "next tuesday"}))
    add("bookings", "duration_minutes", "out_of_range", booking(client, **{"Duration Minutes": 0}))
    add("bookings", "status", "unknown_enum", booking(client, Status="Rescheduled"))
    add("bookings", "client_id", "missing_reference", booking("1600000000000x999999999999999999"))
    cascaded = add("bookings", "client_id", "rejected_reference", booking(bad_email["_id"], Status="Completed"))
    add("bookings", "client_id", "rejected_reference", booking(short_email["_id"]))
    add("payments", "booking_id", "rejected_reference", payment(cascaded["_id"]))

    completed = next(b["_id"] for b in data["bookings"] if b["Status"] == "Completed")
    add("payments", "status", "unknown_enum", payment(completed, Status="Chargeback"))
    add("payments", "amount", "unparseable_number", payment(completed, Amount="12,50 EUR"))
    add("payments", "amount", "out_of_range", payment(completed, Amount=-5))
    add("payments", "paid_at", "unparseable_date", payment(completed, **{"Paid At": "31/31/2025"}))
    add("payments", "booking_id", "missing_reference", payment("1600000000000x888888888888888888"))

    author = users[0]["_id"]
    untitled = add("posts", "title", "missing_required", {k: v for k, v in _post(m, 0, author).items() if k != "Title"})
    add("posts", "author_id", "rejected_reference", _post(m, 1, bad_email["_id"]))
    add("comments", "post_id", "rejected_reference", _comment(m, 0, untitled["_id"], author))
    add("comments", "post_id", "missing_reference", _comment(m, 1, "1600000000000x777777777777777777", author))
    add(
        "comments",
        "body",
        "missing_required",
        {k: v for k, v in _comment(m, 2, data["posts"][0]["_id"], author).items() if k != "Body"},
    )
    add("resources", "resource_type", "unknown_enum", {**_resource(m, 0, author), "Resource Type": "Podcast"})
    add("resources", "uploaded_by", "missing_reference", _resource(m, 1, "1600000000000x666666666666666666"))
    return planted


def _warnings(data: dict[str, list[dict]], planted: list[PlantedReject]) -> dict[str, list[str]]:
    """What the WARN checks must find once the planted records are rejected."""
    rejected = {p.bubble_id for p in planted}

    def loaded(entity: str) -> list[dict]:
        return [r for r in data[entity] if r["_id"] not in rejected]

    users = loaded("users")
    with_client_profile = {p["User"] for p in loaded("client_profiles")}
    with_coach_profile = {p["User"] for p in loaded("coach_profiles")}
    paid = {p["Booking"] for p in loaded("payments")}
    return {
        "client_without_profile": sorted(
            u["_id"] for u in users if u["Role"] == "Client" and u["_id"] not in with_client_profile
        ),
        "coach_without_profile": sorted(
            u["_id"] for u in users if u["Role"] == "Coach" and u["_id"] not in with_coach_profile
        ),
        "confirmed_booking_without_payment": sorted(
            b["_id"] for b in loaded("bookings") if b["Status"] in CONFIRMED and b["_id"] not in paid
        ),
    }
