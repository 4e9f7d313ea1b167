"""No request, however malformed, produces a 500 or a stack trace (contract §9).

Hypothesis throws random JSON bodies, query strings and path segments at every operation.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import FLOWS

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=12,
)
FLOW_KEYS = [
    "displayName",
    "shareName",
    "inviteeUserIds",
    "eTag",
    "readinessStatus",
    "sharingState",
    "@odata.type",
    "id",
]
FLOW_BODIES = st.dictionaries(st.sampled_from(FLOW_KEYS) | st.text(max_size=12), JSON, max_size=6)
ACCEPT_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "destination": st.dictionaries(
            st.sampled_from(["url", "format", "credential"]), JSON, max_size=3
        )
        | JSON,
        "schedule": st.dictionaries(st.sampled_from(["frequency", "timeOfDay"]), JSON, max_size=2)
        | JSON,
    },
)
OPTION_NAMES = st.sampled_from(
    [
        "$filter",
        "$orderby",
        "$select",
        "$expand",
        "$top",
        "$skip",
        "$count",
        "$skiptoken",
        "filter",
        "$FILTER",
        "$x",
    ]
)
OPTION_VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60
) | st.sampled_from(
    [
        "displayName eq 'a'",
        "startswith(shareName,'x')",
        "inviteeUserIds/any(u:u eq 'x')",
        "runs",
        "-1",
        "1000",
        "true",
        "id desc,",
    ]
)
SEGMENTS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(
    lambda text: text not in {".", ".."} and "/" not in text and "?" not in text and "#" not in text
)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


@FUZZ
@given(body=FLOW_BODIES)
def test_create_and_update_flow_never_fail_with_500(
    client: TestClient, admin: dict[str, str], flow: dict[str, Any], body: dict
) -> None:
    _no_server_error(client.post(FLOWS, json=body, headers=admin))
    _no_server_error(client.patch(f"{FLOWS}/{flow['id']}", json=body, headers=admin))


@FUZZ
@given(body=ACCEPT_BODIES)
def test_accept_never_fails_with_500(
    client: TestClient, invitee: dict[str, str], flow: dict[str, Any], body: dict
) -> None:
    _no_server_error(
        client.post(f"{FLOWS}/{flow['id']}/invitation/accept", json=body, headers=invitee)
    )


@FUZZ
@given(params=st.lists(st.tuples(OPTION_NAMES, OPTION_VALUES), max_size=4))
def test_query_options_never_fail_with_500(
    client: TestClient, admin: dict[str, str], flow: dict[str, Any], params: list
) -> None:
    for path in (FLOWS, f"{FLOWS}/{flow['id']}", f"{FLOWS}/{flow['id']}/runs"):
        _no_server_error(client.get(path, params=params, headers=admin))


@FUZZ
@given(segment=SEGMENTS, raw=st.binary(max_size=200))
def test_odd_paths_and_raw_bodies_never_fail_with_500(
    client: TestClient, admin: dict[str, str], segment: str, raw: bytes
) -> None:
    for path in (
        f"{FLOWS}/{segment}",
        f"{FLOWS}/{segment}/runs",
        f"{FLOWS}/{segment}/invitation",
        f"{FLOWS}('{segment}')/runs",
        f"{FLOWS}({segment})",
    ):
        _no_server_error(client.get(path, headers=admin))
        _no_server_error(client.options(path))
    _no_server_error(
        client.post(FLOWS, content=raw, headers={**admin, "Content-Type": "application/json"})
    )
    _no_server_error(
        client.post(
            f"{FLOWS}/{segment}/runs",
            content=raw,
            headers={**admin, "Content-Type": "application/json"},
        )
    )
