"""The service as a new user meets it: the ``industrydata`` executable serving HTTP on
127.0.0.1, driven by CLI subprocesses and plain HTTP.

- A scripted session (directory, SDS import, tokens, create, invitees, accept, run) publishes
  a snapshot with the reference SDS lake export's layout, manifests and value formats, and
  the hub counts the rows the run wrote.
- A run killed with its process (SIGKILL) is ``failed``/``runInterrupted`` once the service
  is back, the flow is ``ready``/``problem``, the published snapshot is untouched, and the
  next run completes.
- Every error status of contract §9 comes back from the real server as the Graph envelope
  with ``request-id``, the echoed ``client-request-id``, and no stack trace.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from industrydata.lake.local import TEMPORARY_PREFIX
from tests.e2e.conftest import ServiceLauncher, ServiceProcess, run_cli
from tests.factories import wait_for

pytestmark = pytest.mark.slow

HUB = "/industryData"
FLOWS = "/industryData/dataShareOutgoingFlows"
REFERENCE_EXPORT = "sds-lake-export-2021"
REFERENCE_ROSTER = "sds-v2.1-csv-sample"
SCHEMA = "schema/roster.v0.3.2.cdm.json"
ROOT_MANIFEST = "current.manifest.cdm.json"
CURRENT_ROSTER = "roster/current.roster.manifest.cdm.json"
SNAPSHOT_MANIFEST = "snapshot.roster.manifest.cdm.json"
PART_FILE = re.compile(
    r"part-00000-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-c000\.csv"
)
VALUE_FORMATS = {
    "DateTime": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"),
    "Boolean": re.compile(r"true|false"),
    "Int32": re.compile(r"-?\d+"),
}
REF_ID_COLUMN = re.compile(r"Ref\w+Id")
CSV_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,"\n]*)')
DISTRICT_STUDENTS = 2_000
"""Big enough for a kill to land mid-run: polled every 10 ms, a run is seen writing at 3-7%
of its tables (a 5 s export on a loaded 2-core machine); 10,000 students took 20 s more."""
RUN_TIMEOUT_SECONDS = 120.0


# --- the CLI side of a session ------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    """A tenant whose directory the CLI filled: two Global Administrators and a plain user."""

    tenant_id: str
    owner: str
    invitee: str
    user: str


def seed_tenant(data_dir: Path, roster: Path | None = None) -> Tenant:
    """Add the directory users (and import ``roster``) with the CLI."""
    tenant = Tenant(*(str(uuid.uuid4()) for _ in range(4)))
    for object_id, name, admin in (
        (tenant.owner, "Adele Vance", True),
        (tenant.invitee, "Megan Bowen", True),
        (tenant.user, "Lee Gu", False),
    ):
        options = ["--global-admin"] if admin else []
        run_cli(
            "directory",
            "add-user",
            "--tenant",
            tenant.tenant_id,
            "--id",
            object_id,
            "--display-name",
            name,
            *options,
            data_dir=data_dir,
        )
    if roster is not None:
        run_cli("import", "sds-csv", roster, "--tenant", tenant.tenant_id, data_dir=data_dir)
    return tenant


def bearer(data_dir: Path, tenant_id: str, object_id: str, *options: str) -> dict[str, str]:
    """Authorization headers with a token printed by ``industrydata token``."""
    jwt = run_cli("token", "--tenant", tenant_id, "--user", object_id, *options, data_dir=data_dir)
    return {"Authorization": f"Bearer {jwt.stdout.strip()}"}


def api(service: ServiceProcess) -> httpx.Client:
    """A plain HTTP client of the service root (no proxies from the environment)."""
    return httpx.Client(base_url=f"{service.url}/beta", timeout=30, trust_env=False)


def create_flow(client: httpx.Client, tenant: Tenant, headers: dict[str, str]) -> dict[str, Any]:
    body = {
        "@odata.type": "#microsoft.graph.industryData.dataShareOutgoingFlow",
        "displayName": "Roster to the district lake",
        "shareName": "district-lake",
        "inviteeUserIds": [tenant.invitee],
    }
    response = client.post(FLOWS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def accept_body(destination: Path, frequency: str) -> dict[str, Any]:
    return {
        "destination": {"url": destination.as_uri(), "format": "sdsCsv"},
        "schedule": {"frequency": frequency, "timeOfDay": "06:00"},
    }


def accept(
    client: httpx.Client,
    flow_id: str,
    destination: Path,
    headers: dict[str, str],
    frequency: str = "daily",
) -> httpx.Response:
    body = accept_body(destination, frequency)
    return client.post(f"{FLOWS}/{flow_id}/invitation/accept", json=body, headers=headers)


def only_run(client: httpx.Client, flow_id: str, headers: dict[str, str]) -> dict[str, Any]:
    (run,) = client.get(f"{FLOWS}/{flow_id}/runs", headers=headers).json()["value"]
    return run


def finished_run(
    client: httpx.Client, flow_id: str, run_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    """Poll the run until it has left ``running``."""

    def finished() -> dict[str, Any] | None:
        run = client.get(f"{FLOWS}/{flow_id}/runs/{run_id}", headers=headers).json()
        return run if run["status"] != "running" else None

    return wait_for(finished, timeout=RUN_TIMEOUT_SECONDS)


def hub_statistics(client: httpx.Client, headers: dict[str, str]) -> dict[str, int]:
    response = client.get(HUB, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["statistics"]


# --- the lake side ------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def published_snapshot(lake: Path) -> str:
    """The snapshot id that ``roster/current.roster.manifest.cdm.json`` names."""
    (sub_manifest,) = read_json(lake / CURRENT_ROSTER)["subManifests"]
    match = re.fullmatch(
        rf"local:/roster/([^/]+)/{re.escape(SNAPSHOT_MANIFEST)}", sub_manifest["definition"]
    )
    assert match, sub_manifest
    return match.group(1)


def csv_rows(path: Path) -> list[list[tuple[str, bool]]]:
    """Rows of a headerless RFC 4180 file with LF after every row, as (value, was quoted)."""
    text = path.read_bytes().decode("utf-8")
    rows: list[list[tuple[str, bool]]] = []
    row: list[tuple[str, bool]] = []
    position = 0
    while position < len(text):
        field = CSV_FIELD.match(text, position)
        assert field is not None
        quoted = field.group(1) is not None
        row.append((field.group(1).replace('""', '"') if quoted else field.group(2), quoted))
        position = field.end()
        separator = text[position : position + 1]
        assert separator in (",", "\n"), (
            f"{path}: {separator or 'end of file'!r} at offset {position}"
        )
        position += 1
        if separator == "\n":
            rows.append(row)
            row = []
    return rows


def snapshot_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                digests[path.relative_to(folder).as_posix()] = hashlib.file_digest(
                    handle, "sha256"
                ).hexdigest()
    return digests


class ReferenceExport:
    """The golden SDS lake export: its schema, manifests and snapshot folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (self.snapshot_folder,) = (path for path in (root / "roster").iterdir() if path.is_dir())
        self.snapshot_id = self.snapshot_folder.name
        self.columns = {
            entity["entityName"]: [
                (attribute["name"], attribute["dataFormat"])
                for attribute in entity["hasAttributes"]
            ]
            for entity in read_json(root / SCHEMA)["definitions"]
        }

    def snapshot_manifest_for(self, snapshot_id: str) -> Any:
        """The reference snapshot manifest with its folder name replaced by ``snapshot_id``."""
        text = (self.snapshot_folder / SNAPSHOT_MANIFEST).read_text(encoding="utf-8")
        return json.loads(text.replace(f"/roster/{self.snapshot_id}/", f"/roster/{snapshot_id}/"))

    def vocabulary(self) -> set[tuple[str, ...]]:
        """RefDefinition rows without their FirstSeen/LastSeen."""
        (part,) = (self.snapshot_folder / "RefDefinition").glob("*.csv")
        return _vocabulary(part, self.columns["RefDefinition"])


def _vocabulary(part: Path, columns: list[tuple[str, str]]) -> set[tuple[str, ...]]:
    return {
        tuple(
            value for (value, _), (_, kind) in zip(row, columns, strict=True) if kind != "DateTime"
        )
        for row in csv_rows(part)
    }


def assert_snapshot_matches_reference(
    lake: Path, snapshot_id: str, reference: ReferenceExport
) -> dict[str, int]:
    """Layout, manifests and value formats of a published snapshot; returns rows per table."""
    reference_root = read_json(reference.root / ROOT_MANIFEST)
    roster_sub_manifests = [
        sub for sub in reference_root["subManifests"] if "/roster/" in sub["definition"]
    ]
    assert read_json(lake / ROOT_MANIFEST) == {
        **reference_root,
        "subManifests": roster_sub_manifests,
    }
    assert read_json(lake / SCHEMA) == read_json(reference.root / SCHEMA)
    assert published_snapshot(lake) == snapshot_id

    folder = lake / "roster" / snapshot_id
    manifest = read_json(folder / SNAPSHOT_MANIFEST)
    expected_manifest = reference.snapshot_manifest_for(snapshot_id)
    assert manifest["entities"] == expected_manifest["entities"]
    assert manifest["relationships"] == expected_manifest["relationships"]
    assert manifest == expected_manifest

    reference_tables = {path.name for path in reference.snapshot_folder.iterdir() if path.is_dir()}
    assert len(reference_tables) == 26 and reference_tables == set(reference.columns)
    assert {path.name for path in folder.iterdir() if path.is_file()} == {SNAPSHOT_MANIFEST}
    assert {path.name for path in folder.iterdir() if path.is_dir()} == reference_tables

    parts = {}
    for table in sorted(reference_tables):
        files = [path.name for path in (folder / table).iterdir()]
        assert len(files) == 1 and PART_FILE.fullmatch(files[0]), f"{table}: {files}"
        parts[table] = folder / table / files[0]
    ref_ids = {int(row[0][0]) for row in csv_rows(parts["RefDefinition"])}
    assert (
        _vocabulary(parts["RefDefinition"], reference.columns["RefDefinition"])
        == reference.vocabulary()
    )

    rows_per_table = {}
    for table, part in parts.items():
        columns = reference.columns[table]
        rows = csv_rows(part)
        rows_per_table[table] = len(rows)
        if rows:
            assert [value for value, _ in rows[0]] != [name for name, _ in columns], (
                f"{table} has a header"
            )
        for number, row in enumerate(rows, start=1):
            where = f"{table} row {number}"
            assert len(row) == len(columns), (
                f"{where}: {len(row)} fields, the reference has {len(columns)}"
            )
            for (value, quoted), (name, kind) in zip(row, columns, strict=True):
                if kind == "String":
                    assert value or quoted, f'{where}: empty {name} is not written ""'
                else:
                    assert not quoted and (value == "" or VALUE_FORMATS[kind].fullmatch(value)), (
                        f"{where}: {name}={value!r}"
                    )
                if REF_ID_COLUMN.fullmatch(name) and value:
                    assert value.isdigit() and int(value) in ref_ids, (
                        f"{where}: {name}={value!r} not in RefDefinition"
                    )
    return rows_per_table


# --- the scripted session -----------------------------------------------------------------


@pytest.mark.reference
def test_scripted_session_publishes_the_reference_layout(
    launch_service: ServiceLauncher, tmp_path: Path, reference_dir: Path
) -> None:
    data_dir = tmp_path / "data"
    tenant = seed_tenant(data_dir, reference_dir / REFERENCE_ROSTER)
    owner = bearer(data_dir, tenant.tenant_id, tenant.owner)
    invitee = bearer(data_dir, tenant.tenant_id, tenant.invitee)
    service = launch_service(data_dir)
    lake = data_dir / "lake" / "district"

    with api(service) as client:
        invitees = client.get(f"{FLOWS}/getPotentialDataShareInvitees", headers=owner)
        assert [(person["displayName"], person["id"]) for person in invitees.json()["value"]] == [
            ("Adele Vance", tenant.owner),
            ("Megan Bowen", tenant.invitee),
        ]
        flow = create_flow(client, tenant, owner)
        assert (flow["readinessStatus"], flow["sharingState"]) == ("notReady", "pending")

        answer = accept(client, flow["id"], lake, invitee)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "accepted"
        run = finished_run(client, flow["id"], only_run(client, flow["id"], owner)["id"], owner)
        flow = client.get(f"{FLOWS}/{flow['id']}", headers=owner).json()
        statistics = hub_statistics(client, owner)

    assert run["status"] == "completed", run["blockingError"]
    assert (flow["readinessStatus"], flow["sharingState"]) == ("ready", "running")
    rows = assert_snapshot_matches_reference(
        lake, run["statistics"]["snapshotId"], ReferenceExport(reference_dir / REFERENCE_EXPORT)
    )
    written = {table["name"]: table["rowsWritten"] for table in run["statistics"]["tables"]}
    assert statistics == written == rows
    assert statistics["Person"] > 0 and statistics["Enrollment"] > 0


# --- crash recovery -----------------------------------------------------------------------


def kill_during_run(
    client: httpx.Client,
    service: ServiceProcess,
    flow_id: str,
    headers: dict[str, str],
    lake: Path,
    *,
    whole_group: bool,
) -> str:
    """Start a run, SIGKILL the service once the run has written a table into its snapshot
    folder (a small run records no progress before its last table); the run's id."""
    published = set((lake / "roster").iterdir())
    started = client.post(f"{FLOWS}/{flow_id}/runs", headers=headers)
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]

    def table_written() -> bool:
        folders = [path for path in (lake / "roster").iterdir() if path not in published]
        return any(
            path.is_file() and not path.name.startswith(TEMPORARY_PREFIX)
            for folder in folders
            for path in folder.rglob("*")
        )

    def writing() -> dict[str, Any] | None:
        written = table_written()
        run = client.get(f"{FLOWS}/{flow_id}/runs/{run_id}", headers=headers).json()
        return run if written or run["status"] != "running" else None

    observed = wait_for(writing, timeout=RUN_TIMEOUT_SECONDS, interval=0.01)
    assert observed["status"] == "running", (
        "the run ended before it could be killed: use a bigger district"
    )
    service.kill(whole_group=whole_group)
    return run_id


def assert_interrupted(
    client: httpx.Client, flow_id: str, run_id: str, headers: dict[str, str]
) -> None:
    run = client.get(f"{FLOWS}/{flow_id}/runs/{run_id}", headers=headers).json()
    flow = client.get(f"{FLOWS}/{flow_id}", headers=headers).json()
    assert run["status"] == "failed"
    assert run["blockingError"]["code"] == "runInterrupted"
    assert run["endDateTime"] is not None
    assert (flow["readinessStatus"], flow["sharingState"]) == ("ready", "problem")


def test_runs_killed_with_the_service_are_interrupted_and_the_next_run_completes(
    launch_service: ServiceLauncher, tmp_path: Path
) -> None:
    district = tmp_path / "district"
    run_cli("generate", "sds-csv", district, "--students", str(DISTRICT_STUDENTS))
    data_dir = tmp_path / "data"
    tenant = seed_tenant(data_dir, district)
    owner = bearer(data_dir, tenant.tenant_id, tenant.owner)
    invitee = bearer(data_dir, tenant.tenant_id, tenant.invitee)
    service = launch_service(data_dir)
    lake = data_dir / "lake" / "district"
    with api(service) as client:
        flow_id = create_flow(client, tenant, owner)["id"]
        assert accept(client, flow_id, lake, invitee, frequency="none").status_code == 200
        first = finished_run(client, flow_id, only_run(client, flow_id, owner)["id"], owner)
        assert first["status"] == "completed", first["blockingError"]
    published = first["statistics"]["snapshotId"]
    before = snapshot_digest(lake / "roster" / published)

    # The serving process crashes; its export child notices and ends by itself.
    with api(service) as client:
        run_id = kill_during_run(client, service, flow_id, owner, lake, whole_group=False)
    service.wait_for_orphans()
    assert published_snapshot(lake) == published
    service.start()
    with api(service) as client:
        assert_interrupted(client, flow_id, run_id, owner)
    assert snapshot_digest(lake / "roster" / published) == before

    # The machine goes down: the export child dies too and leaves its unpublished folder.
    with api(service) as client:
        run_id = kill_during_run(client, service, flow_id, owner, lake, whole_group=True)
    (leftover,) = (
        path for path in (lake / "roster").iterdir() if path.is_dir() and path.name != published
    )
    assert any(leftover.iterdir()) and not (leftover / SNAPSHOT_MANIFEST).exists()
    assert published_snapshot(lake) == published
    service.start()
    with api(service) as client:
        assert_interrupted(client, flow_id, run_id, owner)
        assert snapshot_digest(lake / "roster" / published) == before

        again = client.post(f"{FLOWS}/{flow_id}/runs", headers=owner)
        assert again.status_code == 201, again.text
        last = finished_run(client, flow_id, again.json()["id"], owner)
        flow = client.get(f"{FLOWS}/{flow_id}", headers=owner).json()
        statistics = hub_statistics(client, owner)

    assert last["status"] == "completed", last["blockingError"]
    assert (flow["readinessStatus"], flow["sharingState"]) == ("ready", "running")
    current = published_snapshot(lake)
    assert current == last["statistics"]["snapshotId"] not in (published, leftover.name)
    assert (lake / "roster" / current / SNAPSHOT_MANIFEST).is_file()
    assert statistics == {
        table["name"]: table["rowsWritten"] for table in last["statistics"]["tables"]
    }
    assert statistics["Person"] > DISTRICT_STUDENTS


# --- the error envelope -------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRow:
    """One row of contract §9: a request, the status and code it answers, a header it carries."""

    status: int
    code: str
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    content: bytes | None = None
    header: str = "request-id"


def assert_graph_error(client: httpx.Client, row: ErrorRow) -> None:
    """Send the row's request with a client-request-id; check the envelope and the headers."""
    client_request_id = f"e2e-{row.status}"
    headers = {**row.headers, "client-request-id": client_request_id}
    response = client.request(
        row.method, row.path, headers=headers, json=row.json, content=row.content
    )
    where = f"{row.method} {row.path} → {response.status_code}"
    assert response.status_code == row.status, f"{where}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), where
    body = response.json()
    assert set(body) == {"error"}, where
    error = body["error"]
    assert error["code"] == row.code, where
    assert isinstance(error["message"], str) and error["message"], where
    assert "Traceback" not in response.text and 'File "' not in response.text, where
    inner = error["innerError"]
    assert response.headers["request-id"] == inner["request-id"], where
    assert response.headers["client-request-id"] == client_request_id, where
    assert inner["client-request-id"] == client_request_id, where
    assert response.headers.get(row.header), f"{where}: no {row.header} header"


def test_every_error_status_answers_the_graph_envelope(
    launch_service: ServiceLauncher, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    tenant = seed_tenant(data_dir)
    owner = bearer(data_dir, tenant.tenant_id, tenant.owner)
    invitee = bearer(data_dir, tenant.tenant_id, tenant.invitee)
    reader = bearer(data_dir, tenant.tenant_id, tenant.owner, "--scopes", "User.Read")
    service = launch_service(data_dir, INDUSTRYDATA_RUN_THROTTLE_COUNT="1")
    (data_dir / "lake" / "a-file").write_text("not a folder")

    with api(service) as client:
        flow = create_flow(client, tenant, owner)
        flow_url = f"{FLOWS}/{flow['id']}"
        accept_url = f"{flow_url}/invitation/accept"
        unreachable = accept_body(data_dir / "lake" / "a-file" / "sub", "daily")
        taken = {
            "displayName": "x",
            "shareName": flow["shareName"],
            "inviteeUserIds": [tenant.invitee],
        }
        huge = {"displayName": "x" * (1024 * 1024 + 10)}
        stale = {**owner, "If-Match": '"stale"'}
        form = {**owner, "Content-Type": "application/x-www-form-urlencoded"}
        # fmt: off
        rows = [
            ErrorRow(400, "badRequest", "POST", FLOWS, owner, json={"color": "red"}),
            ErrorRow(401, "unauthenticated", "GET", FLOWS, {}, header="WWW-Authenticate"),
            ErrorRow(403, "accessDenied", "GET", FLOWS, reader),
            ErrorRow(404, "itemNotFound", "GET", f"{FLOWS}/{uuid.uuid4()}", owner),
            ErrorRow(405, "methodNotAllowed", "PUT", flow_url, owner, json={}),
            ErrorRow(406, "notAcceptable", "GET", FLOWS, {**owner, "Accept": "text/html"}),
            ErrorRow(409, "nameAlreadyExists", "POST", FLOWS, owner, json=taken),
            ErrorRow(412, "preconditionFailed", "PATCH", flow_url, stale, json={"displayName": "y"}),
            ErrorRow(413, "payloadTooLarge", "POST", FLOWS, owner, json=huge),
            ErrorRow(415, "unsupportedMediaType", "POST", FLOWS, form, content=b"displayName=x"),
            ErrorRow(422, "destinationUnreachable", "POST", accept_url, invitee, json=unreachable),
        ]
        # fmt: on
        for row in rows:
            assert_graph_error(client, row)

        # 429 needs a ready flow whose on-demand allowance (one run, in this service) is used up.
        assert (
            accept(client, flow["id"], data_dir / "lake" / "district", invitee).status_code == 200
        )
        finished_run(client, flow["id"], only_run(client, flow["id"], owner)["id"], owner)
        on_demand = client.post(f"{flow_url}/runs", headers=owner)
        assert on_demand.status_code == 201, on_demand.text
        finished_run(client, flow["id"], on_demand.json()["id"], owner)
        throttled = ErrorRow(
            429, "tooManyRequests", "POST", f"{flow_url}/runs", owner, header="Retry-After"
        )
        assert_graph_error(client, throttled)

    assert "Traceback" not in service.log()


# --- hostile requests ---------------------------------------------------------------------

HEAD_LIMIT = 32 * 1024
HUGE_HEADER_BYTES = 64 * 1024 * 1024


def resident_bytes(pid: int, field: str = "VmRSS") -> int:
    """The resident set size of process ``pid`` (``VmHWM``: its peak so far), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def send_huge_header(port: int) -> int:
    """Send a request whose Authorization header is 64 MiB, until the server stops it; the
    bytes of the header that could be sent."""
    sent = 0
    chunk = b"A" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        try:
            connection.sendall(
                b"GET /beta/industryData HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            )
            while sent < HUGE_HEADER_BYTES:
                connection.sendall(chunk)
                sent += len(chunk)
            connection.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
    return sent


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_request_heads_are_bounded_and_memory_stays_flat(
    launch_service: ServiceLauncher, tmp_path: Path
) -> None:
    service = launch_service(tmp_path / "data")
    assert service.process is not None
    before = resident_bytes(service.process.pid)
    with ThreadPoolExecutor(max_workers=4) as pool:
        sent = list(pool.map(send_huge_header, [service.port] * 4))
    grown = resident_bytes(service.process.pid, "VmHWM") - before

    assert all(count < HUGE_HEADER_BYTES for count in sent), sent
    # uvicorn's default parser peaks 350 MiB higher here (bench/request_heads.py).
    assert grown < 64 * 1024 * 1024, f"peak RSS grew by {grown / 2**20:.0f} MiB"

    def head(header_bytes: int) -> bytes:
        token = b"x" * header_bytes
        return (
            b"GET /beta/industryData HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: Bearer " + token + b"\r\n\r\n"
        )

    # A head over the bound that arrives in one piece gets past the parser, not the app.
    refused = raw_exchange(service.port, head(HEAD_LIMIT))
    assert refused.startswith(b"HTTP/1.1 431 "), refused[:200]
    assert b'"requestHeaderFieldsTooLarge"' in refused
    long_url = (
        b"GET /beta/industryData?$filter=" + b"x" * HEAD_LIMIT + b" HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert raw_exchange(service.port, long_url).startswith(b"HTTP/1.1 431 ")
    within = raw_exchange(service.port, head(HEAD_LIMIT // 2))
    assert within.startswith(b"HTTP/1.1 401 "), within[:200]
    assert b'"unauthenticated"' in within
    with api(service) as client:
        assert client.get("/$metadata").status_code == 200


def test_hostile_requests_through_the_real_server(
    launch_service: ServiceLauncher, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    tenant = seed_tenant(data_dir)
    owner = bearer(data_dir, tenant.tenant_id, tenant.owner)
    service = launch_service(data_dir)

    with api(service) as client:
        # A spoofed Host never reaches an absolute URL: the default base is the bind address.
        body = {
            "displayName": "Roster",
            "shareName": "roster",
            "inviteeUserIds": [tenant.invitee],
        }
        created = client.post(FLOWS, json=body, headers={**owner, "Host": "attacker.example"})
        assert created.status_code == 201, created.text
        flow_id = created.json()["id"]
        assert created.headers["location"] == f"{service.url}/beta{FLOWS}/{flow_id}"
        assert created.json()["@odata.context"].startswith(f"{service.url}/beta/$metadata#")

        # Key in parentheses, percent-encoded on the wire.
        keyed = client.get(f"{FLOWS}%28%27{flow_id}%27%29/runs", headers=owner)
        assert keyed.status_code == 200, keyed.text

        # Every method of the resource in Allow.
        wrong = client.put(FLOWS, json={}, headers=owner)
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, OPTIONS, POST")

    # Deep JSON is a 400 and the keep-alive connection goes on serving.
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        deep = b"[" * 100_000 + b"]" * 100_000
        headers = {**owner, "Content-Type": "application/json"}
        connection.request("POST", f"/beta{FLOWS}", body=deep, headers=headers)
        answer = connection.getresponse()
        error = json.loads(answer.read())["error"]
        assert (answer.status, error["code"]) == (400, "badRequest"), error
        kept = connection.sock
        assert kept is not None, "the server closed the connection"
        connection.request("GET", f"/beta{FLOWS}/{flow_id}", headers=owner)
        again = connection.getresponse()
        assert again.status == 200, again.read()
        again.read()
        assert connection.sock is kept
    finally:
        connection.close()
    assert "Traceback" not in service.log()
