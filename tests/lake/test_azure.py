"""An Azure Blob destination keeps the destination contract on a real blob service (Azurite)
with each kind of credential: objects appear whole or not at all (a streamed object only
when its block list is committed, so a killed writer leaves nothing visible), folders list
and delete recursively inside the destination's prefix, ADLS Gen2 folder markers are not
objects, and storage failures become destination errors that never carry the secret."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import pyarrow as pa
import pytest
from azure.core import exceptions as azure_exceptions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

from industrydata.canonical.tables import table_by_name
from industrydata.errors import DestinationUnreachable, ExportError, InvalidDestination
from industrydata.lake import open_destination, parse_destination, write_delta
from industrydata.lake._storage_errors import AZURE_ERROR_MAP, storage_errors
from industrydata.lake.azure import AzureBlobDestination
from industrydata.lake.blob_access import BlobAccess
from industrydata.lake.endpoints import EndpointPolicy
from tests.conftest import Azurite
from tests.lake.delta_support import FakeChanges, read_delta
from tests.lake.servers import REMOTE_WORDS, counting_server, hostile_storage_server

PREFIX = "lake"
WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5"


def _sas(azurite: Azurite, container: str, permission: str) -> str:
    return generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )


def _azure(azurite: Azurite, container: str, credential: dict[str, str], **options: int):
    """The destination built directly, with ``accountKey`` or ``sasToken``."""
    return AzureBlobDestination(
        access=BlobAccess(
            azurite.account,
            azurite.blob_endpoint,
            account_key=credential.get("accountKey"),
            sas_token=credential.get("sasToken"),
        ),
        container=container,
        prefix=PREFIX,
        endpoints=EndpointPolicy.from_allowed([azurite.origin]),
        **options,
    )


def _open_az(azurite: Azurite, url: str, credential: dict[str, str], allowed: list[str]):
    return open_destination(
        parse_destination(url, credential=credential),
        allowed_local_roots=[],
        allowed_storage_endpoints=allowed,
    )


@pytest.fixture
def container_client(azurite: Azurite, azure_container: str) -> ContainerClient:
    """The test's container, seen directly through the SDK (to check what really is there)."""
    return ContainerClient.from_connection_string(azurite.connection_string, azure_container)


@pytest.fixture(params=["connectionString", "accountKey", "sasToken"])
def destination(
    request: pytest.FixtureRequest, azurite: Azurite, azure_container: str
) -> AzureBlobDestination:
    """The destination ``az://<container>/lake``, opened with each kind of credential."""
    if request.param == "connectionString":
        return _open_az(
            azurite,
            f"az://{azure_container}/{PREFIX}",
            {"connectionString": azurite.connection_string},
            [azurite.origin],
        )
    if request.param == "accountKey":
        return _azure(azurite, azure_container, {"accountKey": azurite.account_key})
    return _azure(azurite, azure_container, {"sasToken": _sas(azurite, azure_container, "racwdl")})


@pytest.mark.azurite
def test_write_bytes_then_read_bytes_returns_content(
    destination: AzureBlobDestination, container_client: ContainerClient
) -> None:
    destination.write_bytes("a/b/c.json", b"one")
    destination.write_bytes("a/b/c.json", b"two")

    assert destination.read_bytes("a/b/c.json") == b"two"
    assert destination.exists("a/b/c.json")
    assert not destination.exists("a/b/other.json")
    assert [blob.name for blob in container_client.list_blobs()] == ["lake/a/b/c.json"]


@pytest.mark.azurite
def test_create_new_creates_once_and_never_replaces(
    destination: AzureBlobDestination, container_client: ContainerClient
) -> None:
    assert destination.create_new("t/_delta_log/0.json", b"first")
    assert not destination.create_new("t/_delta_log/0.json", b"second")

    assert destination.read_bytes("t/_delta_log/0.json") == b"first"
    assert [blob.name for blob in container_client.list_blobs()] == ["lake/t/_delta_log/0.json"]


@pytest.mark.azurite
def test_open_writer_stages_blocks_and_commits_them_as_one_blob(
    azurite: Azurite, azure_container: str, container_client: ContainerClient
) -> None:
    destination = _azure(
        azurite, azure_container, {"accountKey": azurite.account_key}, block_size=4
    )

    with destination.open_writer("t/part.csv") as stream:
        stream.write(b"a,b\n")
        stream.write(memoryview(b"c,d\n"))
        stream.write(b"e")

    assert destination.read_bytes("t/part.csv") == b"a,b\nc,d\ne"
    committed, uncommitted = container_client.get_blob_client("lake/t/part.csv").get_block_list()
    assert [block.size for block in committed] == [4, 4, 1]
    assert uncommitted == []


@pytest.mark.azurite
def test_open_writer_small_object_is_one_blob(destination: AzureBlobDestination) -> None:
    with destination.open_writer("t/part.csv") as stream:
        stream.write(b"a,b\n")

    assert destination.read_bytes("t/part.csv") == b"a,b\n"


@pytest.mark.azurite
def test_open_writer_failure_leaves_no_object_and_keeps_the_old_one(
    azurite: Azurite, azure_container: str, container_client: ContainerClient
) -> None:
    destination = _azure(
        azurite, azure_container, {"accountKey": azurite.account_key}, block_size=4
    )
    destination.write_bytes("t/old.csv", b"old")

    for path in ("t/new.csv", "t/old.csv"):
        with pytest.raises(RuntimeError), destination.open_writer(path) as stream:
            stream.write(b"half of it\n")
            raise RuntimeError("writer died")

    assert destination.list() == ["t/old.csv"]
    assert destination.read_bytes("t/old.csv") == b"old"
    _, staged = container_client.get_blob_client("lake/t/new.csv").get_block_list("uncommitted")
    assert staged, "the failed writer had staged blocks; none became visible"


@pytest.mark.azurite
def test_open_writer_killed_process_leaves_no_object(
    azurite: Azurite, azure_container: str, container_client: ContainerClient
) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from industrydata.lake.azure import AzureBlobDestination
        from industrydata.lake.blob_access import BlobAccess
        from industrydata.lake.endpoints import EndpointPolicy

        destination = AzureBlobDestination(
            access=BlobAccess(
                {azurite.account!r}, {azurite.blob_endpoint!r},
                account_key={azurite.account_key!r},
            ),
            container={azure_container!r}, prefix={PREFIX!r},
            endpoints=EndpointPolicy.from_allowed([{azurite.origin!r}]), block_size=1024,
        )
        with destination.open_writer("t/part.csv") as stream:
            for _ in range(3):
                stream.write(b"x" * 1024)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )

    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)

    assert completed.returncode == -9, completed.stderr.decode()
    blob = container_client.get_blob_client("lake/t/part.csv")
    assert not blob.exists()
    assert len(blob.get_block_list("uncommitted")[1]) == 3
    assert _azure(azurite, azure_container, {"accountKey": azurite.account_key}).list() == []


@pytest.mark.azurite
def test_list_returns_objects_under_a_folder_sorted(
    destination: AzureBlobDestination, container_client: ContainerClient
) -> None:
    for path in ["r/2/b.csv", "r/1/a.csv", "r10/x.csv", "top.json"]:
        destination.write_bytes(path, b"x")
    container_client.upload_blob("lake2/outside.csv", b"x")
    container_client.upload_blob("outside.csv", b"x")

    assert destination.list("r") == ["r/1/a.csv", "r/2/b.csv"]
    assert destination.list("r/") == ["r/1/a.csv", "r/2/b.csv"]
    assert destination.list() == ["r/1/a.csv", "r/2/b.csv", "r10/x.csv", "top.json"]
    assert destination.list("missing") == []


@pytest.mark.azurite
def test_delete_removes_an_object_or_a_folder_inside_the_prefix_only(
    destination: AzureBlobDestination, container_client: ContainerClient
) -> None:
    for path in ["r/1/a.csv", "r/1/b.csv", "r/2/c.csv", "r10/keep.csv", "keep.json"]:
        destination.write_bytes(path, b"x")
    container_client.upload_blob("r/1/outside.csv", b"x")

    destination.delete("r/1")
    destination.delete("r/2/c.csv")
    destination.delete("never/was")

    assert destination.list() == ["keep.json", "r10/keep.csv"]
    assert "r/1/outside.csv" in [blob.name for blob in container_client.list_blobs()]


@pytest.mark.azurite
def test_folder_markers_are_not_objects_and_go_with_their_folder(
    destination: AzureBlobDestination, container_client: ContainerClient
) -> None:
    """ADLS Gen2 accounts list their folders through the blob API as marker blobs."""
    for marker in ["lake/r", "lake/r/1"]:
        container_client.upload_blob(marker, b"", metadata={"hdi_isfolder": "true"})
    destination.write_bytes("r/1/a.csv", b"x")

    assert destination.list() == ["r/1/a.csv"]
    assert not destination.exists("r/1")

    destination.delete("r")

    assert list(container_client.list_blobs()) == []


@pytest.mark.azurite
def test_read_bytes_missing_object_raises_export_error(destination: AzureBlobDestination) -> None:
    with pytest.raises(ExportError) as raised:
        destination.read_bytes("missing.json")

    assert type(raised.value) is ExportError
    assert "missing.json" in raised.value.message
    assert "the object does not exist" in raised.value.message


@pytest.mark.azurite
def test_probe_leaves_nothing_behind(
    destination: AzureBlobDestination, container_client: ContainerClient
) -> None:
    destination.probe()

    assert list(container_client.list_blobs()) == []


@pytest.mark.azurite
def test_probe_missing_container_raises_destination_unreachable(azurite: Azurite) -> None:
    destination = _open_az(
        azurite,
        f"az://missing-{uuid.uuid4().hex[:12]}/lake",
        {"connectionString": azurite.connection_string},
        [azurite.origin],
    )

    with pytest.raises(DestinationUnreachable) as raised:
        destination.probe()

    assert "container does not exist" in raised.value.message


@pytest.mark.azurite
@pytest.mark.parametrize("kind", ["accountKey", "connectionString", "malformedKey"])
def test_probe_wrong_key_raises_destination_unreachable_without_the_key(
    azurite: Azurite, azure_container: str, kind: str
) -> None:
    if kind == "connectionString":
        credential = {
            "connectionString": azurite.connection_string.replace(azurite.account_key, WRONG_KEY)
        }
        destination = _open_az(azurite, f"az://{azure_container}/x", credential, [azurite.origin])
        secret = WRONG_KEY
    else:
        secret = WRONG_KEY if kind == "accountKey" else "not base64 at all!"
        destination = _azure(azurite, azure_container, {"accountKey": secret})

    with pytest.raises(DestinationUnreachable) as raised:
        destination.probe()

    assert raised.value.status == 422
    assert secret not in raised.value.message
    assert secret not in repr(destination)


@pytest.mark.azurite
def test_probe_read_only_sas_raises_destination_unreachable_without_the_sas(
    azurite: Azurite, azure_container: str, container_client: ContainerClient
) -> None:
    sas = _sas(azurite, azure_container, "rl")
    connection_string = f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={sas}"
    readable = _open_az(
        azurite,
        f"az://{azure_container}/{PREFIX}",
        {"connectionString": connection_string},
        [azurite.origin],
    )
    container_client.upload_blob("lake/existing.csv", b"x")

    with pytest.raises(DestinationUnreachable) as raised:
        readable.probe()

    assert "the credential does not allow this operation" in raised.value.message
    assert parse_qs(sas)["sig"][0] not in raised.value.message
    assert readable.read_bytes("existing.csv") == b"x"


def test_open_destination_plain_http_endpoint_needs_an_allowed_origin() -> None:
    credential = {
        "connectionString": "AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1"
    }
    spec = parse_destination("az://roster/x", credential=credential)

    with pytest.raises(InvalidDestination, match="not in the allowed storage endpoints"):
        open_destination(spec, allowed_local_roots=[], allowed_storage_endpoints=[])
    opened = open_destination(
        spec, allowed_local_roots=[], allowed_storage_endpoints=["http://127.0.0.1:10000/"]
    )
    assert opened.url == "http://127.0.0.1:10000/devstoreaccount1/roster"


SAS_IN_URL = "https://a.blob.core.windows.net/c/x?sv=2024&sig=SECRETSIG%3D"


def _http_error(cls: type[HttpResponseError], status: int, code: str, reason: str):
    error = cls(f"{reason}\nRequestId:1\nErrorCode:{code}")
    error.status_code, error.error_code, error.reason = status, code, reason
    return error


@pytest.mark.parametrize(
    ("foreign", "expected", "reason"),
    [
        (
            _http_error(ResourceNotFoundError, 404, "ContainerNotFound", "No container."),
            DestinationUnreachable,
            "the container does not exist",
        ),
        (
            _http_error(ResourceNotFoundError, 404, "BlobNotFound", "No blob."),
            ExportError,
            "the object does not exist",
        ),
        (
            _http_error(HttpResponseError, 403, "AuthorizationPermissionMismatch", "Denied."),
            DestinationUnreachable,
            "the credential does not allow this operation",
        ),
        (
            ClientAuthenticationError(f"Signature did not match for {SAS_IN_URL}"),
            DestinationUnreachable,
            "the storage service refused the credential",
        ),
        (
            ServiceRequestError(f"Max retries exceeded with url: {SAS_IN_URL} (refused)"),
            DestinationUnreachable,
            "the storage service could not be reached",
        ),
        (
            _http_error(HttpResponseError, 500, "InternalError", "Server busy."),
            ExportError,
            "the storage service reported an error",
        ),
    ],
    ids=["container-missing", "blob-missing", "forbidden", "authentication", "connection", "other"],
)
def test_storage_errors_maps_azure_exception(
    foreign: Exception, expected: type, reason: str
) -> None:
    with pytest.raises(expected) as raised, storage_errors("write", "roster/x.csv"):
        raise foreign

    assert type(raised.value) is expected
    assert raised.value.__cause__ is foreign
    assert raised.value.message == f"Could not write 'roster/x.csv' at the destination: {reason}."
    assert "SECRETSIG" not in raised.value.message
    assert str(foreign).split()[0] not in raised.value.message, "the remote's words"


@pytest.mark.azurite
def test_delta_location_lets_deltalake_write_inside_the_prefix(
    destination: AzureBlobDestination,
) -> None:
    deltalake = pytest.importorskip("deltalake")
    root, storage_options = destination.delta_location()

    deltalake.write_deltalake(
        f"{root}/Person", pa.table({"Id": ["a", "b"]}), storage_options=storage_options
    )

    assert root.endswith(f"/{PREFIX}")
    assert any(path.startswith("Person/_delta_log/") for path in destination.list("Person"))
    read = deltalake.DeltaTable(f"{root}/Person", storage_options=storage_options)
    assert read.to_pyarrow_table().column("Id").to_pylist() == ["a", "b"]


@pytest.mark.azurite
def test_delta_tables_change_incrementally_on_azure(destination: AzureBlobDestination) -> None:
    person = table_by_name("Person")
    store = FakeChanges()
    store.put(person, [{"Id": f"p{index}", "GivenName": "Ada"} for index in range(10)])
    root, storage_options = destination.delta_location()
    start = datetime(2026, 11, 27, 6, 0)
    write_delta(destination, run_id="run-0", run_time=start, tables=[person], source=store)
    store.put(person, [{"Id": "p1", "GivenName": "Changed"}])
    store.delete(person, [("p2",)])

    result = write_delta(
        destination,
        run_id="run-1",
        run_time=start + timedelta(minutes=1),
        tables=[person],
        source=store,
    )

    assert result.snapshot_id == "1"
    assert read_delta(f"{root}/Person", person, **storage_options).equals(store.current(person))
    assert any(path.startswith("Person/deletion_vector_") for path in destination.list("Person"))


@pytest.mark.azurite
def test_delta_commit_whose_retried_request_finds_it_made_is_the_runs_own(
    destination: AzureBlobDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    person, membership = table_by_name("Person"), table_by_name("AadGroupMembership")
    store = FakeChanges()
    store.put(person, [{"Id": f"p{index}", "GivenName": "Ada"} for index in range(10)])
    create_new = destination._create_new

    def response_lost(path: str, data: bytes) -> bool:
        """The first request creates the commit but its response is lost; the SDK's retry
        of the conditional PUT is answered 409 by the blob service."""
        assert create_new(path, data)
        return create_new(path, data)

    monkeypatch.setattr(destination, "_create_new", response_lost)
    start = datetime(2026, 11, 27, 6, 0)
    write_delta(destination, run_id="run-0", run_time=start, tables=[person], source=store)
    store.put(person, [{"Id": "p1", "GivenName": "Changed"}])

    result = write_delta(
        destination,
        run_id="run-1",
        run_time=start + timedelta(minutes=1),
        tables=[person, membership],
        source=store,
    )

    assert result.snapshot_id == "1"
    root, storage_options = destination.delta_location()
    assert read_delta(f"{root}/Person", person, **storage_options).equals(store.current(person))
    commits = [path for path in destination.list("Person/_delta_log") if path.endswith(".json")]
    assert len(commits) == 2
    assert b'"industrydata.runId":"run-1"' in destination.read_bytes(commits[1])
    assert destination.exists("AadGroupMembership/_delta_log/00000000000000000000.json")


def test_azure_error_map_names_real_classes_specific_first() -> None:
    unconditional = [
        getattr(azure_exceptions, match.name)
        for match, _, _ in AZURE_ERROR_MAP
        if match.status_code is None and match.error_code is None
    ]
    for match, _, _ in AZURE_ERROR_MAP:
        assert issubclass(getattr(azure_exceptions, match.name), azure_exceptions.AzureError)
    for index, cls in enumerate(unconditional):
        assert not any(issubclass(cls, earlier) for earlier in unconditional[:index])


def _guarded(endpoint: str, policy: EndpointPolicy) -> AzureBlobDestination:
    return AzureBlobDestination(
        access=BlobAccess("contosolake", endpoint, account_key=WRONG_KEY),
        container="roster",
        prefix=PREFIX,
        endpoints=policy,
    )


def test_client_never_connects_to_an_unlisted_endpoint_even_when_built_directly() -> None:
    """The transport applies the policy itself, whatever path built the destination, and
    its refusal is not retried."""
    with counting_server() as server:
        for scheme in ("http", "https"):
            destination = _guarded(
                f"{scheme}://127.0.0.1:{server.port}/contosolake", EndpointPolicy.from_allowed([])
            )
            with pytest.raises(InvalidDestination, match="not in the allowed storage endpoints"):
                destination.probe()

    assert server.connections == []


def test_client_refuses_a_public_name_that_rebinds_to_loopback() -> None:
    """Accepted while the name resolved to a public address; at connection time it resolves
    to a loopback one and the transport refuses it."""
    answers = {"contosolake.blob.core.windows.net": ["20.150.0.1"]}
    policy = EndpointPolicy.from_allowed([], lambda host, port: answers[host])
    policy.check("https://contosolake.blob.core.windows.net")
    destination = _guarded("https://contosolake.blob.core.windows.net", policy)
    answers["contosolake.blob.core.windows.net"] = ["127.0.0.1"]

    with pytest.raises(InvalidDestination, match="not public"):
        destination.probe()


@pytest.mark.parametrize(
    ("status", "expected"), [(403, DestinationUnreachable), (404, ExportError)]
)
def test_what_a_listed_server_answers_never_reaches_a_message(
    status: int, expected: type[Exception]
) -> None:
    with hostile_storage_server(status) as origin:
        destination = open_destination(
            parse_destination(
                "az://roster/lake",
                credential={
                    "connectionString": f"AccountName=contosolake;AccountKey={WRONG_KEY};"
                    f"BlobEndpoint={origin}/contosolake"
                },
            ),
            allowed_local_roots=[],
            allowed_storage_endpoints=[origin],
        )
        with pytest.raises(expected) as raised:
            destination.read_bytes("manifest.json")

    assert REMOTE_WORDS not in raised.value.message
    assert origin not in raised.value.message
    assert WRONG_KEY not in raised.value.message


@pytest.mark.parametrize("status", [302, 307])
def test_client_follows_no_redirect(status: int) -> None:
    """A listed server's redirect to an unlisted port is not followed."""
    with counting_server() as target:
        location = f"http://127.0.0.1:{target.port}/contosolake/roster/lake/manifest.json"
        with hostile_storage_server(status, location) as origin:
            destination = _guarded(f"{origin}/contosolake", EndpointPolicy.from_allowed([origin]))
            with pytest.raises(ExportError) as raised:
                destination.read_bytes("manifest.json")

    assert target.connections == []
    assert REMOTE_WORDS not in raised.value.message


@pytest.mark.azurite
def test_client_ignores_proxy_variables(
    destination: AzureBlobDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy checks the real peer: a proxy named by the environment is not used."""
    with counting_server() as proxy:
        for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        destination.probe()

    assert proxy.connections == []
