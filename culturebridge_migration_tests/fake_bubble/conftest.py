"""Fixtures for the local Bubble server's own tests: plain HTTP calls against a running FakeBubble."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import requests

KEY = "test-key"


@pytest.fixture
def api_get() -> Callable[..., requests.Response]:
    """GET `root + path` with the test bearer token; `constraints` (a list) is sent as Bubble's JSON."""

    def get(root: str, path: str, *, constraints: object = None, token: str | None = KEY, **params: object):
        if constraints is not None:
            params["constraints"] = constraints if isinstance(constraints, str) else json.dumps(constraints)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(root + path, params=params, headers=headers, timeout=10)

    return get


@pytest.fixture
def search_ids(api_get: Callable[..., requests.Response]) -> Callable[..., list[str]]:
    """The `_id`s a search of one type returns, in order; fails on anything but a 200."""

    def ids(root: str, bubble_type: str, constraints: list, **params: object) -> list[str]:
        response = api_get(root, f"/obj/{bubble_type}", constraints=constraints, **params)
        assert response.status_code == 200, response.text
        return [r["_id"] for r in response.json()["response"]["results"]]

    return ids
