"""A destination is accepted only when its URL, format and credential are well formed, and a
local one only when it resolves (after '..' and symlinks) inside an allowed root. Errors
never echo the URL or the credential."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from industrydata.errors import DestinationUnreachable, InvalidDestination
from industrydata.lake import LocalDestination, open_destination, parse_destination
from tests.lake.servers import counting_server

SECRET = "c2VjcmV0LWtleQ=="
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={SECRET};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)


def _open(url: str, roots: list[Path], **options):
    return open_destination(
        parse_destination(url, **options), allowed_local_roots=roots, allowed_storage_endpoints=[]
    )


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("ftp://host/x", {}),
        ("https://account.blob.core.windows.net/c/x", {}),
        ("lake/folder", {}),
        ("file://fileserver/share/x", {}),
        ("file:relative/x", {}),
        (f"file:///tmp/x?sig={SECRET}", {}),
        ("file:///tmp/x#frag", {}),
        ("file:///tmp/x", {"credential": {"accountKey": SECRET}}),
        ("file:///tmp/x", {"format": "csv"}),
        ("abfss://account.dfs.core.windows.net/x", {}),
        ("abfss://cont@account.blob.core.windows.net/x", {}),
        ("abfss://Cont@account.dfs.core.windows.net/x", {}),
        ("abfss://cont@account.dfs.core.windows.net:443/x", {}),
        ("abfss://cont@account.dfs.core.cloudapi.de/x", {}),
        ("abfss://cont@account.dfs.core.windows.net.attacker.example/x", {}),
        ("abfss://cont@account.blob.core.chinacloudapi.cn/x", {}),
        (f"abfss://cont:{SECRET}@account.dfs.core.windows.net/x", {}),
        ("abfss://cont@account.dfs.core.windows.net/a/../b", {}),
        ("abfss://c@account.dfs.core.windows.net/x", {}),
        ("abfss://cont@account.dfs.core.windows.net/x", {"credential": {"password": SECRET}}),
        ("abfss://cont@account.dfs.core.windows.net/x", {"credential": {"accountKey": " "}}),
        (
            "abfss://cont@account.dfs.core.windows.net/x",
            {"credential": {"accountKey": SECRET, "sasToken": SECRET}},
        ),
        (
            "abfss://cont@otheraccount.dfs.core.windows.net/x",
            {"credential": {"connectionString": AZURITE}},
        ),
        ("az://cont/x", {}),
        ("az://cont/x", {"credential": {"accountKey": SECRET}}),
        ("az://cont/x", {"credential": {"connectionString": f"garbage{SECRET}"}}),
        ("az://cont/x", {"credential": {"connectionString": f"AccountKey={SECRET}"}}),
        (
            "az://cont/x",
            {"credential": {"connectionString": f"UseDevelopmentStorage=true;x={SECRET}"}},
        ),
        ("az://cont/x", {"credential": {"accountKey": "k" * 4097}}),
        (
            "abfss://cont@account.dfs.core.windows.net/x",
            {"credential": {"accountKey": f"{SECRET}!"}},
        ),
    ],
)
def test_parse_destination_malformed_raises_invalid_destination(url: str, options: dict) -> None:
    with pytest.raises(InvalidDestination) as raised:
        parse_destination(url, **options)

    assert raised.value.status == 400
    assert raised.value.inner_code == "invalidDestination"
    assert SECRET not in raised.value.message
    assert url not in raised.value.message


def test_parse_destination_file_url_decodes_path() -> None:
    spec = parse_destination("file://localhost/srv/my%20lake")

    assert (spec.scheme, spec.path, spec.format, spec.credential) == (
        "file",
        "/srv/my lake",
        "sdsCsv",
        None,
    )


def test_parse_destination_abfss_reads_account_container_and_path() -> None:
    spec = parse_destination(
        "abfss://roster@contosolake.dfs.core.windows.net/sds/export/",
        format="parquet",
        credential={"sasToken": SECRET},
    )

    assert (spec.access.account, spec.container, spec.path) == (
        "contosolake",
        "roster",
        "sds/export",
    )
    assert spec.access.blob_endpoint == "https://contosolake.blob.core.windows.net"
    assert spec.access.sas_token == SECRET
    assert spec.credential_kind == "sasToken"
    assert spec.format == "parquet"
    assert SECRET not in repr(spec)


def test_parse_destination_az_takes_account_from_connection_string() -> None:
    spec = parse_destination("az://roster", credential={"connectionString": AZURITE})

    assert (spec.access.account, spec.container, spec.path) == ("devstoreaccount1", "roster", "")
    assert spec.access.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    assert spec.access.account_key == SECRET
    assert spec.credential_kind == "connectionString"


def test_parse_destination_development_storage_shorthand() -> None:
    spec = parse_destination(
        "az://roster/x", credential={"connectionString": "UseDevelopmentStorage=true"}
    )

    assert spec.access.account == "devstoreaccount1"
    assert spec.access.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"


def test_open_destination_creates_the_folder_at_the_first_write_not_before(
    tmp_path: Path,
) -> None:
    root = tmp_path / "lake"

    destination = _open(f"file://{root}/tenant/a", [tmp_path / "other", root])

    assert isinstance(destination, LocalDestination)
    assert destination.root == (root / "tenant" / "a").resolve()
    assert not root.exists()
    destination.probe()
    assert destination.root.is_dir()
    assert list(destination.root.iterdir()) == []


def test_open_destination_dotdot_inside_root_is_allowed(tmp_path: Path) -> None:
    destination = _open(f"file://{tmp_path}/a/../b", [tmp_path])

    assert destination.root == (tmp_path / "b").resolve()


@pytest.mark.parametrize(
    "relative", ["lake/../outside", "lake/../../outside", "lake/%2e%2e/outside", "lake2", ""]
)
def test_open_destination_outside_roots_raises(tmp_path: Path, relative: str) -> None:
    base = tmp_path / "base"
    (base / "lake").mkdir(parents=True)

    with pytest.raises(InvalidDestination) as raised:
        _open(f"file://{base}/{relative}", [base / "lake"])

    assert "outside the allowed" in raised.value.message
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["base", "lake"]


def test_open_destination_symlink_escape_raises(tmp_path: Path) -> None:
    root, outside = tmp_path / "lake", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidDestination):
        _open(f"file://{root}/escape/sub", [root])

    assert list(outside.iterdir()) == []


def test_open_destination_symlinked_root_is_allowed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)

    destination = _open(f"file://{tmp_path}/alias/x", [tmp_path / "alias"])

    assert destination.root == (real / "x").resolve()


@pytest.mark.parametrize("format", ["sdsCsv", "delta", "parquet"])
def test_open_destination_every_format_opens_locally(tmp_path: Path, format: str) -> None:
    destination = _open(f"file://{tmp_path}/lake", [tmp_path], format=format)

    assert destination.delta_location() == (str(tmp_path / "lake"), {})


@pytest.mark.parametrize(
    ("url", "credential", "container_url"),
    [
        (
            "abfss://roster@contosolake.dfs.core.windows.net/x",
            {"accountKey": SECRET},
            "https://contosolake.blob.core.windows.net/roster",
        ),
        (
            "az://roster/x",
            {"connectionString": AZURITE},
            "http://127.0.0.1:10000/devstoreaccount1/roster",
        ),
        (
            "az://roster/x",
            {"connectionString": "UseDevelopmentStorage=true"},
            "http://127.0.0.1:10000/devstoreaccount1/roster",
        ),
        (
            "az://roster/x",
            {
                "connectionString": "defaultendpointsprotocol=http;accountname=contosolake;"
                f"accountkey={SECRET};endpointsuffix=core.usgovcloudapi.net"
            },
            "http://contosolake.blob.core.usgovcloudapi.net/roster",
        ),
        (
            "az://roster/x",
            {
                "connectionString": f"DefaultEndpointsProtocol=http;AccountName=contosolake;AccountKey={SECRET}"
            },
            "http://contosolake.blob.core.windows.net/roster",
        ),
        (
            "az://roster/x",
            {
                "connectionString": "BlobEndpoint=https://contosolake.blob.core.windows.net/;"
                f"SharedAccessSignature=sv=2024&sig={SECRET}"
            },
            "https://contosolake.blob.core.windows.net/roster",
        ),
    ],
)
def test_open_destination_azure_uses_the_endpoint_it_checked(
    url: str, credential: dict, container_url: str
) -> None:
    """The Azure SDK is built from the parts checked, never from the connection string."""
    spec = parse_destination(url, credential=credential)

    destination = open_destination(
        spec, allowed_local_roots=[], allowed_storage_endpoints=[_origin(container_url)]
    )

    assert spec.access.blob_endpoint == container_url.rsplit("/", 1)[0]
    assert destination.url == container_url
    assert destination.prefix == "x"
    assert SECRET not in repr(destination)


def _origin(url: str) -> str:
    return "/".join(url.split("/")[:3])


def test_open_destination_plain_http_endpoint_not_allowed_raises() -> None:
    with pytest.raises(InvalidDestination, match="not in the allowed storage endpoints"):
        open_destination(
            parse_destination("az://roster/x", credential={"connectionString": AZURITE}),
            allowed_local_roots=[],
            allowed_storage_endpoints=["http://127.0.0.1:10001"],
        )


def test_open_destination_folder_that_cannot_be_created_is_unreachable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a folder")

    destination = _open(f"file://{blocker}/sub", [tmp_path])
    with pytest.raises(DestinationUnreachable) as raised:
        destination.probe()

    assert raised.value.status == 422
    assert "Not a directory" in raised.value.message


# Outbound connections (issue 8 §1): every probe is refused before any connection.

PUBLIC_ADDRESS = "20.150.0.1"  # a public Azure range; never connected to here


def _resolver(answers: dict[str, list[str]]):
    return lambda host, port: answers[host]


@pytest.mark.parametrize(
    "template",
    [
        (
            "AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={origin}/devstoreaccount1;"
            " BlobEndpoint=https://devstoreaccount1.blob.core.windows.net"
        ),
        "AccountName=devstoreaccount1;AccountKey={key};BlobEndpo\u0131nt={origin}/devstoreaccount1",
        (
            "AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={origin}/devstoreaccount1;"
            "BlobSecondaryEndpoint={origin}/devstoreaccount1-secondary"
        ),
    ],
    ids=["duplicate-BlobEndpoint", "dotless-i-key", "unknown-key"],
)
def test_connection_string_read_two_ways_is_refused_and_nothing_is_contacted(
    template: str,
) -> None:
    with counting_server() as server:
        connection_string = template.format(key=SECRET, origin=f"http://127.0.0.1:{server.port}")
        with pytest.raises(InvalidDestination) as raised:
            parse_destination("az://roster/x", credential={"connectionString": connection_string})

    assert raised.value.status == 400
    assert raised.value.target == "credential"
    assert SECRET not in raised.value.message
    assert str(server.port) not in raised.value.message
    assert server.connections == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1:{port}/devstoreaccount1",
        "https://localhost:{port}/devstoreaccount1",
        "http://127.0.0.1:{port}/devstoreaccount1",
        "https://[::1]:{port}/devstoreaccount1",
        "https://169.254.169.254/devstoreaccount1",
        "http://169.254.169.254/devstoreaccount1",
    ],
)
def test_unlisted_endpoint_is_refused_alike_for_open_and_closed_ports(endpoint: str) -> None:
    """No connection, and the same answer whether something listens there or not."""
    messages = set()
    with counting_server() as server:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]
        for port in (server.port, closed_port):
            credential = {
                "connectionString": f"BlobEndpoint={endpoint.format(port=port)};"
                f"SharedAccessSignature=sv=2024&sig={SECRET}"
            }
            with pytest.raises(InvalidDestination) as raised:
                open_destination(
                    parse_destination("az://roster/x", credential=credential),
                    allowed_local_roots=[],
                    allowed_storage_endpoints=["http://127.0.0.1:10000"],
                    resolver=_resolver({}),
                )
            messages.add(raised.value.message)

    assert server.connections == []
    assert len(messages) == 1
    assert "not in the allowed storage endpoints" in messages.pop()


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"])
def test_public_name_resolving_to_a_private_address_is_refused(address: str) -> None:
    spec = parse_destination(
        "abfss://roster@contosolake.dfs.core.windows.net/x", credential={"accountKey": SECRET}
    )

    with pytest.raises(InvalidDestination, match="not public"):
        open_destination(
            spec,
            allowed_local_roots=[],
            allowed_storage_endpoints=[],
            resolver=_resolver({"contosolake.blob.core.windows.net": [address]}),
        )


@pytest.mark.parametrize(
    ("url", "container_url"),
    [
        (
            "abfss://roster@contosolake.dfs.core.windows.net/x",
            "https://contosolake.blob.core.windows.net/roster",
        ),
        (
            "abfss://roster@contosolake.dfs.core.chinacloudapi.cn/x",
            "https://contosolake.blob.core.chinacloudapi.cn/roster",
        ),
        (
            "abfss://roster@contosolake.dfs.core.usgovcloudapi.net/x",
            "https://contosolake.blob.core.usgovcloudapi.net/roster",
        ),
    ],
)
def test_public_storage_host_resolving_to_public_addresses_opens(
    url: str, container_url: str
) -> None:
    host = container_url.split("/")[2]

    destination = open_destination(
        parse_destination(url, credential={"accountKey": SECRET}),
        allowed_local_roots=[],
        allowed_storage_endpoints=[],
        resolver=_resolver({host: [PUBLIC_ADDRESS]}),
    )

    assert destination.url == container_url


def test_open_destination_refuses_an_allowed_root_itself(tmp_path: Path) -> None:
    """A flow holding a whole root would keep every other flow out of it."""
    with pytest.raises(InvalidDestination, match="not the root itself"):
        _open(f"file://{tmp_path}/lake/", [tmp_path / "lake"])
