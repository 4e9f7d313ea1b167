"""OData query options over a collection: filter, then sort, then page, as contract §10 says.

Every option is validated before any work: malformed expressions and unknown properties raise
``InvalidFilter``; unknown ``$`` options, repeated options, bad ``$top``/``$skip``/``$count`` and
damaged skiptokens raise ``BadRequest``. Following ``@odata.nextLink`` walks the whole ordered
result exactly once, and ``$top``/``$skip`` bound it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from industrydata.api._odata_filter import MAX_FILTER_DEPTH
from industrydata.api.metadata import RUN_STATUS, entity_set_options
from industrydata.api.odata import (
    CollectionPage,
    QueryOptions,
    apply_query,
    parse_query,
    project,
)
from industrydata.errors import BadRequest, InvalidFilter

FLOWS = entity_set_options("dataShareOutgoingFlow", default_order="displayName")
RUNS = entity_set_options("outgoingFlowRun", default_order="startDateTime asc")
BASE_URL = "http://localhost/beta/industryData/dataShareOutgoingFlows"

ADMIN_A = "0c7e4b9a-1f3d-4e55-9a61-2b8f3c4d5e6a"
ADMIN_B = "5d2f8a71-6c4e-4b3a-8e9f-0a1b2c3d4e5f"
ADMIN_C = "9e8d7c6b-5a49-4382-b1a0-fedcba987654"

_FLOW_ROWS = (
    ("Alpha roster", "alpha", "ready", "running", ADMIN_A),
    ("Beta roster", "beta", "notReady", "pending", ADMIN_B),
    ("Gamma export", "gamma", "failed", "problem", ADMIN_A),
    ("Delta lake share", "delta", "ready", "problem", ADMIN_B),
    ("Epsilon 50% sample", "epsilon", "expired", "pending", ADMIN_A),
    ("Zeta_nightly", "zeta", "ready", "running", ADMIN_C),
    ("Eta weekly", "eta", "notReady", "pending", ADMIN_C),
    ("Theta roster", "theta", "ready", "running", ADMIN_A),
    ("Iota 50 sample", "iota", "ready", "running", ADMIN_B),
    ("Kappa zetaXnightly", "kappa", "failed", "problem", ADMIN_C),
    ("Lambda roster", "lambda", "ready", "running", ADMIN_A),
    ("Mu archive", "mu", "notReady", "pending", ADMIN_B),
)
ALPHABETICAL = sorted(row[0] for row in _FLOW_ROWS)
FIRST_RUN = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)


def _id(kind: str, number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:test:{kind}:{number}"))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _flow(number: int) -> dict[str, Any]:
    display_name, share_name, readiness, sharing, invitee = _FLOW_ROWS[number]
    return {
        "@odata.type": "#microsoft.graph.industryData.dataShareOutgoingFlow",
        "@odata.etag": f'W/"{number}"',
        "id": _id("flow", number),
        "eTag": f'W/"{number}"',
        "displayName": display_name,
        "shareName": share_name,
        "inviteeUserIds": [invitee],
        "readinessStatus": readiness,
        "sharingState": sharing,
        "runs": [],
        "invitation": {"id": _id("invitation", number), "status": "pending"},
    }


def _run_status(number: int) -> str:
    if number == 29:
        return "running"
    return {3: "failed", 7: "completedWithWarnings"}.get(number % 10, "completed")


def _run(number: int) -> dict[str, Any]:
    """Run ``number`` starts on November ``number + 1`` at 06:00 UTC and wrote 100 rows per day."""
    status = _run_status(number)
    start = FIRST_RUN + timedelta(days=number)
    return {
        "@odata.type": "#microsoft.graph.industryData.outgoingFlowRun",
        "id": _id("run", number),
        "displayName": f"Run {number:02d}",
        "startDateTime": _iso(start),
        "endDateTime": None if status == "running" else _iso(start + timedelta(hours=1)),
        "status": status,
        "blockingError": (
            {"code": "exportFailed", "message": "disk full", "target": None, "details": []}
            if status == "failed"
            else None
        ),
        "statistics": {"rowsWritten": number * 100, "progressPercent": 40 if number == 29 else 100},
    }


@pytest.fixture
def flows() -> list[dict[str, Any]]:
    return [_flow(number) for number in range(len(_FLOW_ROWS))]


@pytest.fixture
def runs() -> list[dict[str, Any]]:
    return [_run(number) for number in range(30)]


def _one_page(items: list[dict[str, Any]], params: Any, entity_set: Any) -> CollectionPage:
    return apply_query(items, parse_query(params, entity_set), page_size=999, base_url=BASE_URL)


def _walk(
    items: list[dict[str, Any]], params: Any, entity_set: Any, page_size: int
) -> list[CollectionPage]:
    """Every page of a query, following nextLinks the way a client does."""
    options = parse_query(params, entity_set)
    pages = [apply_query(items, options, page_size=page_size, base_url=BASE_URL)]
    while pages[-1].next_link is not None:
        link = urlsplit(pages[-1].next_link)
        assert f"{link.scheme}://{link.netloc}{link.path}" == BASE_URL
        options = parse_query(parse_qsl(link.query), entity_set)
        pages.append(apply_query(items, options, page_size=page_size, base_url=BASE_URL))
        assert len(pages) <= len(items) + 1, "paging does not terminate"
    return pages


FLOW_QUERIES = [
    ({}, ALPHABETICAL),
    (
        {"$filter": "readinessStatus eq 'ready'"},
        [
            "Alpha roster",
            "Delta lake share",
            "Iota 50 sample",
            "Lambda roster",
            "Theta roster",
            "Zeta_nightly",
        ],
    ),
    (
        {"$filter": "readinessStatus ne 'ready' and sharingState eq 'pending'"},
        ["Beta roster", "Epsilon 50% sample", "Eta weekly", "Mu archive"],
    ),
    (
        {"$filter": "readinessStatus eq 'failed' or readinessStatus eq 'expired'"},
        ["Epsilon 50% sample", "Gamma export", "Kappa zetaXnightly"],
    ),
    (
        {"$filter": "not (sharingState eq 'running')"},
        [
            "Beta roster",
            "Delta lake share",
            "Epsilon 50% sample",
            "Eta weekly",
            "Gamma export",
            "Kappa zetaXnightly",
            "Mu archive",
        ],
    ),
    (
        {"$filter": "readinessStatus gt 'ready'"},
        ["Epsilon 50% sample", "Gamma export", "Kappa zetaXnightly"],
    ),
    (
        {"$filter": "readinessStatus eq microsoft.graph.industryData.readinessStatus'expired'"},
        ["Epsilon 50% sample"],
    ),
    ({"$filter": "startswith(displayName,'E')"}, ["Epsilon 50% sample", "Eta weekly"]),
    (
        {"$filter": "endswith(displayName, 'roster')"},
        ["Alpha roster", "Beta roster", "Lambda roster", "Theta roster"],
    ),
    ({"$filter": "contains(displayName,'50%')"}, ["Epsilon 50% sample"]),
    ({"$filter": "contains(displayName,'a_n')"}, ["Zeta_nightly"]),
    ({"$filter": "startswith(displayName,'%')"}, []),
    ({"$filter": "shareName in ('mu', 'alpha')"}, ["Alpha roster", "Mu archive"]),
    ({"$filter": "shareName in ('mu')"}, ["Mu archive"]),
    (
        {"$filter": f"inviteeUserIds/any(u: u eq '{ADMIN_C}')"},
        ["Eta weekly", "Kappa zetaXnightly", "Zeta_nightly"],
    ),
    (
        {"$filter": f"inviteeUserIds/any(u:u eq {ADMIN_C.upper()})"},
        ["Eta weekly", "Kappa zetaXnightly", "Zeta_nightly"],
    ),
    (
        {"$filter": f"inviteeUserIds/all(u: u eq '{ADMIN_A}')"},
        ["Alpha roster", "Epsilon 50% sample", "Gamma export", "Lambda roster", "Theta roster"],
    ),
    ({"$filter": "inviteeUserIds/any()"}, ALPHABETICAL),
    ({"$filter": f"id eq '{_id('flow', 3)}'"}, ["Delta lake share"]),
    ({"$filter": "displayName eq 'Alpha roster' and shareName eq 'alpha'"}, ["Alpha roster"]),
    ({"$filter": "displayName ge 'L' and displayName lt 'N'"}, ["Lambda roster", "Mu archive"]),
    ({"$filter": "eTag eq null"}, []),
    (
        {"$orderby": "readinessStatus desc,displayName"},
        [
            "Epsilon 50% sample",
            "Gamma export",
            "Kappa zetaXnightly",
            "Alpha roster",
            "Delta lake share",
            "Iota 50 sample",
            "Lambda roster",
            "Theta roster",
            "Zeta_nightly",
            "Beta roster",
            "Eta weekly",
            "Mu archive",
        ],
    ),
    ({"$orderby": "shareName desc", "$top": "3"}, ["Zeta_nightly", "Theta roster", "Mu archive"]),
    ({"$skip": "10"}, ["Theta roster", "Zeta_nightly"]),
    ({"$skip": "12"}, []),
    ({"$top": "0"}, []),
    (
        {
            "$filter": "sharingState eq 'running'",
            "$orderby": "displayName desc",
            "$skip": "1",
            "$top": "2",
        },
        ["Theta roster", "Lambda roster"],
    ),
]


@pytest.mark.parametrize(("params", "expected"), FLOW_QUERIES)
def test_apply_query_flows_returns_expected_names(
    flows: list[dict[str, Any]], params: dict[str, str], expected: list[str]
) -> None:
    page = _one_page(flows, params, FLOWS)
    assert [item["displayName"] for item in page.items] == expected
    assert page.next_link is None


_COMPLETED_DESCENDING = [
    28,
    26,
    25,
    24,
    22,
    21,
    20,
    19,
    18,
    16,
    15,
    14,
    12,
    11,
    10,
    9,
    8,
    6,
    5,
    4,
    2,
    1,
    0,
]
RUN_QUERIES = [
    ({}, list(range(30))),
    ({"$filter": "status eq 'failed'"}, [3, 13, 23]),
    ({"$filter": "startDateTime ge 2026-11-25T00:00:00Z"}, [24, 25, 26, 27, 28, 29]),
    ({"$filter": "startDateTime lt '2026-11-03T06:00:00Z'"}, [0, 1]),
    ({"$filter": "startDateTime eq 2026-11-05T08:00:00+02:00"}, [4]),
    ({"$filter": "endDateTime eq null"}, [29]),
    ({"$filter": "endDateTime ne null and status eq 'running'"}, []),
    ({"$filter": "statistics/rowsWritten gt 2500"}, [26, 27, 28, 29]),
    (
        {"$filter": "statistics/progressPercent lt 100.5 and statistics/progressPercent ne 100"},
        [29],
    ),
    ({"$filter": "blockingError/code eq 'exportFailed'"}, [3, 13, 23]),
    (
        {
            "$filter": "status in ('failed', 'completedWithWarnings')",
            "$orderby": "startDateTime desc",
        },
        [27, 23, 17, 13, 7, 3],
    ),
    ({"$orderby": "status,startDateTime desc"}, [29, 23, 13, 3, *_COMPLETED_DESCENDING, 27, 17, 7]),
    ({"$orderby": "startDateTime desc", "$top": "3"}, [29, 28, 27]),
    ({"$orderby": "statistics/rowsWritten desc", "$skip": "28"}, [1, 0]),
    (
        {"$filter": "status eq 'failed' or status eq 'running'", "$orderby": "endDateTime"},
        [29, 3, 13, 23],
    ),
    (
        {"$filter": "status eq 'failed' or status eq 'running'", "$orderby": "endDateTime desc"},
        [23, 13, 3, 29],
    ),
]


@pytest.mark.parametrize(("params", "expected"), RUN_QUERIES)
def test_apply_query_runs_returns_expected_runs(
    runs: list[dict[str, Any]], params: dict[str, str], expected: list[int]
) -> None:
    page = _one_page(runs, params, RUNS)
    assert [item["id"] for item in page.items] == [_id("run", number) for number in expected]


ERRORS = [
    ({"$filter": "displayName eq"}, InvalidFilter),
    ({"$filter": "(((displayName"}, InvalidFilter),
    ({"$filter": ""}, InvalidFilter),
    ({"$filter": "displayName eq 'unterminated"}, InvalidFilter),
    ({"$filter": "nope eq 1"}, InvalidFilter),
    ({"$filter": "runs/any(r: r eq 'x')"}, InvalidFilter),
    ({"$filter": "readinessStatus eq 'bogus'"}, InvalidFilter),
    (
        {"$filter": "readinessStatus eq microsoft.graph.industryData.runStatus'failed'"},
        InvalidFilter,
    ),
    ({"$filter": "displayName eq 5"}, InvalidFilter),
    ({"$filter": "displayName"}, InvalidFilter),
    ({"$filter": "inviteeUserIds eq 'x'"}, InvalidFilter),
    ({"$filter": "inviteeUserIds/any(u: u eq 'not-a-guid')"}, InvalidFilter),
    ({"$filter": "tolower(displayName) eq 'a'"}, InvalidFilter),
    ({"$filter": "nosuchfunction(displayName)"}, InvalidFilter),
    ({"$filter": "startswith(displayName)"}, InvalidFilter),
    ({"$filter": "contains(inviteeUserIds, 'a')"}, InvalidFilter),
    ({"$filter": "displayName add 1 eq 2"}, InvalidFilter),
    ({"$filter": "shareName in ('a', shareName)"}, InvalidFilter),
    ({"$filter": "not " * 3000 + "true"}, InvalidFilter),
    ({"$orderby": "nope"}, InvalidFilter),
    ({"$orderby": "displayName sideways"}, InvalidFilter),
    ({"$orderby": "inviteeUserIds"}, InvalidFilter),
    ({"$orderby": ""}, InvalidFilter),
    ({"$select": "nope"}, InvalidFilter),
    ({"$select": "displayName,"}, InvalidFilter),
    ({"$expand": "nope"}, InvalidFilter),
    ({"$expand": "runs($top=1)"}, InvalidFilter),
    ({"$top": "1000"}, BadRequest),
    ({"$top": "-1"}, BadRequest),
    ({"$top": "ten"}, BadRequest),
    ({"$top": "9" * 5000}, BadRequest),
    ({"$skip": "-3"}, BadRequest),
    ({"$skip": "1.5"}, BadRequest),
    ({"$count": "yes"}, BadRequest),
    ({"$search": "roster"}, BadRequest),
    ({"$Unknown": "1"}, BadRequest),
    ([("$top", "1"), ("$top", "2")], BadRequest),
    ([("$top", "1"), ("top", "1")], BadRequest),
    ([("$FILTER", "true"), ("$filter", "true")], BadRequest),
    ({"$skiptoken": "garbage!"}, BadRequest),
    ({"$skiptoken": ""}, BadRequest),
    ({"$skiptoken": "AAAAAAAAAAAAAAAAAAAAAA"}, BadRequest),
]


@pytest.mark.parametrize(("params", "error"), ERRORS)
def test_parse_query_invalid_raises(params: Any, error: type[BadRequest]) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_query(params, FLOWS)
    assert type(raised.value) is error


CONDITION = "displayName eq 'x'"


@pytest.mark.parametrize(
    "text",
    [
        " or ".join([CONDITION] * (MAX_FILTER_DEPTH + 1)),
        " and ".join([CONDITION] * 2_000),
        "not " * (MAX_FILTER_DEPTH + 1) + CONDITION,
        "not " * 5_000 + CONDITION,
        "inviteeUserIds/any(u: " + "not " * MAX_FILTER_DEPTH + "u eq 'x')",
    ],
)
def test_parse_query_filter_nested_too_deeply_raises(text: str) -> None:
    with pytest.raises(InvalidFilter, match=f"deeper than {MAX_FILTER_DEPTH}"):
        parse_query({"$filter": text}, FLOWS)


@pytest.mark.parametrize(
    "text",
    [
        " or ".join([CONDITION] * (MAX_FILTER_DEPTH - 2)),
        "(" * 5_000 + CONDITION + ")" * 5_000,
        "displayName in (" + ",".join(["'x'"] * 2_000) + ")",
    ],
)
def test_parse_query_filter_within_the_depth_bound_works(
    flows: list[dict[str, Any]], text: str
) -> None:
    """Redundant parentheses add no level; long lists are wide, not deep."""
    options = parse_query({"$filter": text}, FLOWS)
    assert apply_query(flows, options, page_size=10, base_url=BASE_URL).items == []


def _first_link(flows: list[dict[str, Any]]) -> str:
    page = apply_query(flows, parse_query({"$top": "5"}, FLOWS), page_size=2, base_url=BASE_URL)
    assert page.next_link is not None
    return page.next_link


def _token(link: str) -> str:
    return dict(parse_qsl(urlsplit(link).query))["$skiptoken"]


def test_parse_query_tampered_skiptoken_raises(flows: list[dict[str, Any]]) -> None:
    token = _token(_first_link(flows))
    position = len(token) // 2
    tampered = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    with pytest.raises(BadRequest) as raised:
        parse_query({"$skiptoken": tampered}, FLOWS)
    assert type(raised.value) is BadRequest


def test_parse_query_skiptoken_with_other_options_raises(flows: list[dict[str, Any]]) -> None:
    token = _token(_first_link(flows))
    with pytest.raises(BadRequest):
        parse_query({"$skiptoken": token, "$top": "1"}, FLOWS)


def test_parse_query_skiptoken_of_another_entity_set_raises(flows: list[dict[str, Any]]) -> None:
    token = _token(
        apply_query(
            flows,
            parse_query({"$orderby": "shareName"}, FLOWS),
            page_size=2,
            base_url=BASE_URL,
        ).next_link
        or ""
    )
    with pytest.raises(BadRequest):
        parse_query({"$skiptoken": token}, RUNS)


def test_parse_query_option_names_case_insensitive_and_dollar_optional(
    flows: list[dict[str, Any]],
) -> None:
    canonical = _one_page(
        flows,
        {
            "$filter": "sharingState eq 'pending'",
            "$orderby": "shareName desc",
            "$top": "3",
            "$select": "shareName",
            "$count": "true",
        },
        FLOWS,
    )
    relaxed = _one_page(
        flows,
        {
            "FILTER": "sharingState eq 'pending'",
            "$OrderBy": "SHARENAME DESC",
            "Top": "3",
            "$SELECT": "ShareName",
            "count": "TRUE",
        },
        FLOWS,
    )
    assert relaxed == canonical
    assert [item["shareName"] for item in relaxed.items] == ["mu", "eta", "epsilon"]


def test_parse_query_custom_parameters_ignored(flows: list[dict[str, Any]]) -> None:
    assert _one_page(flows, {"tenant": "x", "foo": "bar"}, FLOWS) == _one_page(flows, {}, FLOWS)


def test_parse_query_single_entity_refuses_collection_options() -> None:
    with pytest.raises(BadRequest):
        parse_query({"$top": "1"}, FLOWS, collection=False)


def test_project_single_entity_applies_select_and_expand(flows: list[dict[str, Any]]) -> None:
    params = {"$select": "displayName", "$expand": "invitation"}
    options = parse_query(params, FLOWS, collection=False)
    assert project(flows[0], options) == {
        "@odata.type": "#microsoft.graph.industryData.dataShareOutgoingFlow",
        "@odata.etag": 'W/"0"',
        "id": _id("flow", 0),
        "displayName": "Alpha roster",
        "invitation": {"id": _id("invitation", 0), "status": "pending"},
    }


def test_apply_query_select_keeps_id_and_annotations(flows: list[dict[str, Any]]) -> None:
    page = _one_page(flows, {"$select": "displayName,readinessStatus"}, FLOWS)
    assert {tuple(item) for item in page.items} == {
        ("@odata.type", "@odata.etag", "id", "displayName", "readinessStatus")
    }


def test_apply_query_without_expand_drops_navigation(flows: list[dict[str, Any]]) -> None:
    item = _one_page(flows, {}, FLOWS).items[0]
    assert "runs" not in item and "invitation" not in item
    assert item["inviteeUserIds"] == [ADMIN_A]


def test_apply_query_expand_keeps_only_expanded_navigation(flows: list[dict[str, Any]]) -> None:
    item = _one_page(flows, {"$expand": "Runs"}, FLOWS).items[0]
    assert item["runs"] == [] and "invitation" not in item
    both = parse_query({"$expand": "*"}, FLOWS)
    assert set(both.expand) == {"runs", "invitation"}


def test_apply_query_count_is_filtered_total_before_paging(runs: list[dict[str, Any]]) -> None:
    params = {"$filter": "status eq 'completed'", "$count": "true", "$top": "4"}
    pages = _walk(runs, params, RUNS, page_size=3)
    assert [len(page.items) for page in pages] == [3, 1]
    assert [page.count for page in pages] == [23, 23]
    assert _one_page(runs, {"$filter": "status eq 'completed'"}, RUNS).count is None


def test_apply_query_body_carries_annotations(runs: list[dict[str, Any]]) -> None:
    options = parse_query({"$count": "true"}, RUNS)
    body = apply_query(runs, options, page_size=10, base_url=BASE_URL).body("ctx")
    assert list(body) == ["@odata.context", "@odata.count", "@odata.nextLink", "value"]
    last = _walk(runs, {}, RUNS, page_size=10)[-1].body("ctx")
    assert list(last) == ["@odata.context", "value"]


@pytest.mark.parametrize(
    ("page_size", "params", "sizes"),
    [
        (10, {}, [10, 10, 10]),
        (7, {}, [7, 7, 7, 7, 2]),
        (5, {"$top": "12"}, [5, 5, 2]),
        (5, {"$top": "5"}, [5]),
        (5, {"$top": "3"}, [3]),
        (100, {"$top": "999"}, [30]),
        (4, {"$skip": "25"}, [4, 1]),
        (4, {"$skip": "30"}, [0]),
    ],
)
def test_apply_query_next_links_walk_every_item_once(
    runs: list[dict[str, Any]], page_size: int, params: dict[str, str], sizes: list[int]
) -> None:
    query = {"$orderby": "displayName desc", **params}
    pages = _walk(runs, query, RUNS, page_size)
    assert [len(page.items) for page in pages] == sizes
    assert all(page.next_link for page in pages[:-1]) and pages[-1].next_link is None
    served = [item["id"] for page in pages for item in page.items]
    expected = _one_page(runs, query, RUNS).items
    assert served == [item["id"] for item in expected]
    assert len(set(served)) == len(served)


def test_apply_query_next_link_survives_changes_between_pages(runs: list[dict[str, Any]]) -> None:
    first = apply_query(runs, parse_query({}, RUNS), page_size=10, base_url=BASE_URL)
    late = {**_run(0), "id": _id("run", 99), "displayName": "Late"}
    changed = [late, *runs[:9], *runs[10:]]
    assert first.next_link is not None
    options = parse_query(parse_qsl(urlsplit(first.next_link).query), RUNS)
    second = apply_query(changed, options, page_size=10, base_url=BASE_URL)
    assert [item["id"] for item in second.items] == [_id("run", n) for n in range(10, 20)]


def test_apply_query_invalid_page_size_raises(runs: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError):
        apply_query(runs, parse_query({}, RUNS), page_size=0, base_url=BASE_URL)


def test_parse_query_returns_public_options() -> None:
    options = parse_query(
        {"$select": "displayName", "$top": "7", "$skip": "2", "$count": "true", "$expand": "runs"},
        FLOWS,
    )
    assert isinstance(options, QueryOptions)
    assert (options.select, options.expand, options.top, options.skip, options.count) == (
        ("displayName",),
        ("runs",),
        7,
        2,
        True,
    )


_RUN_ORDERS = {
    "startDateTime asc": lambda run: (run["startDateTime"], run["id"]),
    "displayName desc": None,
    "status desc": lambda run: (-RUN_STATUS.members.index(run["status"]), run["startDateTime"]),
}
_RUN_FILTERS = {
    None: lambda run: True,
    "status ne 'failed'": lambda run: run["status"] != "failed",
    "statistics/rowsWritten ge 1000": lambda run: run["statistics"]["rowsWritten"] >= 1000,
}


def _expected_runs(order: str, filter_text: str | None) -> list[str]:
    keep = _RUN_FILTERS[filter_text]
    matched = [run for run in (_run(number) for number in range(30)) if keep(run)]
    key = _RUN_ORDERS[order]
    if key is None:
        ordered = sorted(matched, key=lambda run: run["displayName"], reverse=True)
    else:
        ordered = sorted(matched, key=key)
    return [run["id"] for run in ordered]


@settings(max_examples=150, deadline=None)
@given(
    page_size=st.integers(min_value=1, max_value=12),
    top=st.none() | st.integers(min_value=0, max_value=35),
    skip=st.integers(min_value=0, max_value=35),
    order=st.sampled_from(sorted(_RUN_ORDERS)),
    filter_text=st.sampled_from([None, "status ne 'failed'", "statistics/rowsWritten ge 1000"]),
)
def test_apply_query_pages_equal_slice_of_sorted_filtered_items(
    page_size: int, top: int | None, skip: int, order: str, filter_text: str | None
) -> None:
    items = [_run(number) for number in range(30)]
    params = {"$orderby": order, "$skip": str(skip)}
    if top is not None:
        params["$top"] = str(top)
    if filter_text is not None:
        params["$filter"] = filter_text
    pages = _walk(items, params, RUNS, page_size)
    served = [item["id"] for page in pages for item in page.items]
    expected = _expected_runs(order, filter_text)
    assert served == expected[skip : None if top is None else skip + top]
    assert all(len(page.items) == page_size for page in pages[:-1])


_FILTER_WORDS = st.sampled_from(
    [
        "displayName",
        "readinessStatus",
        "inviteeUserIds",
        "u",
        "eq",
        "ne",
        "gt",
        "and",
        "or",
        "not",
        "in",
        "any",
        "all",
        "startswith",
        "contains",
        "null",
        "true",
        "'a'",
        "'ready'",
        "1",
        "-2.5",
        ADMIN_A,
        "2026-11-27T06:00:00Z",
        "2026-11-27",
        "(",
        ")",
        ",",
        "/",
        ":",
        " ",
        "'",
        "add",
        "x.y'z'",
        "$",
        "%",
        "_",
    ]
)


@settings(max_examples=200, deadline=None)
@given(text=st.lists(_FILTER_WORDS, max_size=14).map(" ".join) | st.text(max_size=40))
def test_parse_query_any_filter_text_fails_only_as_invalid_filter(text: str) -> None:
    items = [_flow(number) for number in range(len(_FLOW_ROWS))]
    try:
        options = parse_query({"$filter": text}, FLOWS)
    except InvalidFilter:
        return
    assert len(apply_query(items, options, page_size=5, base_url=BASE_URL).items) <= 5
