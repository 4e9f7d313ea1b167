"""A destination is accepted only when its URL, format and credential are well formed, and a
local one only when it resolves (after '..' and symlinks) inside an allowed root. Errors
never echo the URL or the credential."""

from __future__ import annotations

from pathlib import Path

import pytest

from industrydata.errors import DestinationUnreachable, InvalidDestination
from industrydata.lake import LocalDestination, open_destination, parse_destination

SECRET = "c2VjcmV0LWtleQ=="
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={SECRET};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)


def _open(url: str, roots: list[Path], **options):
    return open_destination(
        parse_destination(url, **options), allowed_local_roots=roots, allowed_http_endpoints=[]
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

    assert (spec.account, spec.container, spec.path) == ("contosolake", "roster", "sds/export")
    assert spec.blob_endpoint == "https://contosolake.blob.core.windows.net"
    assert spec.credential_kind == "sasToken"
    assert spec.format == "parquet"
    assert SECRET not in repr(spec)


def test_parse_destination_az_takes_account_from_connection_string() -> None:
    spec = parse_destination("az://roster", credential={"connectionString": AZURITE})

    assert (spec.account, spec.container, spec.path) == ("devstoreaccount1", "roster", "")
    assert spec.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    assert spec.credential_kind == "connectionString"


def test_parse_destination_development_storage_shorthand() -> None:
    spec = parse_destination(
        "az://roster/x", credential={"connectionString": "UseDevelopmentStorage=true"}
    )

    assert spec.account == "devstoreaccount1"
    assert spec.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"


def test_open_destination_creates_folder_inside_allowed_root(tmp_path: Path) -> None:
    root = tmp_path / "lake"

    destination = _open(f"file://{root}/tenant/a", [tmp_path / "other", root])

    assert isinstance(destination, LocalDestination)
    assert destination.root == (root / "tenant" / "a").resolve()
    assert destination.root.is_dir()


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
            "https://contosolake.blob.core.windows.net/roster",
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
    """The Azure SDK reads a connection string again; it must reach the endpoint checked."""
    spec = parse_destination(url, credential=credential)

    destination = open_destination(
        spec, allowed_local_roots=[], allowed_http_endpoints=[_origin(container_url)]
    )

    assert spec.blob_endpoint == container_url.rsplit("/", 1)[0]
    assert destination.url == container_url
    assert destination.prefix == "x"
    assert SECRET not in repr(destination)


def _origin(url: str) -> str:
    return "/".join(url.split("/")[:3])


def test_open_destination_plain_http_endpoint_not_allowed_raises() -> None:
    with pytest.raises(InvalidDestination, match="not https"):
        open_destination(
            parse_destination("az://roster/x", credential={"connectionString": AZURITE}),
            allowed_local_roots=[],
            allowed_http_endpoints=["http://127.0.0.1:10001"],
        )


def test_open_destination_folder_that_cannot_be_created_is_unreachable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a folder")

    with pytest.raises(DestinationUnreachable) as raised:
        _open(f"file://{blocker}/sub", [tmp_path])

    assert raised.value.status == 422
    assert "Not a directory" in raised.value.message


def test_open_destination_refuses_an_allowed_root_itself(tmp_path: Path) -> None:
    """A flow holding a whole root would keep every other flow out of it."""
    with pytest.raises(InvalidDestination, match="not the root itself"):
        _open(f"file://{tmp_path}/lake/", [tmp_path / "lake"])
