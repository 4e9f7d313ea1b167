"""A credential is read once into the account, blob endpoint and secret the service uses.
Connection strings are parsed strictly: ASCII keys, each known and given once, printable
ASCII values, bounded length; errors never quote the string."""

from __future__ import annotations

import base64
import secrets

import pytest

from industrydata.errors import InvalidDestination
from industrydata.lake.blob_access import (
    MAX_CREDENTIAL_CHARS,
    BlobAccess,
    blob_access,
    parse_connection_string,
)

KEY = base64.b64encode(secrets.token_bytes(64)).decode()
SAS = f"sv=2024-08-04&ss=b&srt=co&sp=rwdlac&se=2030-01-01T00:00:00Z&sig={secrets.token_hex(16)}"


def test_portal_account_key_connection_string() -> None:
    access = parse_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=contosolake;AccountKey={KEY};"
        "EndpointSuffix=core.windows.net"
    )

    assert access == BlobAccess(
        "contosolake", "https://contosolake.blob.core.windows.net", account_key=KEY
    )
    assert KEY not in repr(access)


def test_portal_sas_connection_string_uses_only_the_blob_endpoint() -> None:
    access = parse_connection_string(
        "BlobEndpoint=https://contosolake.blob.core.windows.net/;"
        "QueueEndpoint=https://contosolake.queue.core.windows.net/;"
        "FileEndpoint=https://contosolake.file.core.windows.net/;"
        "TableEndpoint=https://contosolake.table.core.windows.net/;"
        f"SharedAccessSignature={SAS}"
    )

    assert access == BlobAccess(
        "contosolake", "https://contosolake.blob.core.windows.net", sas_token=SAS
    )
    assert SAS not in repr(access)


@pytest.mark.parametrize(
    ("text", "account", "endpoint"),
    [
        (
            f"accountname=contosolake;ACCOUNTKEY={KEY}",
            "contosolake",
            "https://contosolake.blob.core.windows.net",
        ),
        (
            f" AccountName = contosolake ;AccountKey={KEY};;",
            "contosolake",
            "https://contosolake.blob.core.windows.net",
        ),
        (
            (
                f"DefaultEndpointsProtocol=http;AccountName=contosolake;AccountKey={KEY};"
                "EndpointSuffix=core.usgovcloudapi.net"
            ),
            "contosolake",
            "http://contosolake.blob.core.usgovcloudapi.net",
        ),
        (
            f"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;SharedAccessSignature=?{SAS}",
            "devstoreaccount1",
            "http://127.0.0.1:10000/devstoreaccount1",
        ),
        (
            "UseDevelopmentStorage=true",
            "devstoreaccount1",
            "http://127.0.0.1:10000/devstoreaccount1",
        ),
    ],
)
def test_connection_string_variants(text: str, account: str, endpoint: str) -> None:
    access = parse_connection_string(text)

    assert (access.account, access.blob_endpoint) == (account, endpoint)
    assert access.account_key or access.sas_token


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        # The probes: a second BlobEndpoint, a key spelled with a dotless ı.
        (
            (
                f"AccountName=acct123;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:9/acct123; "
                "BlobEndpoint=https://acct123.blob.core.windows.net"
            ),
            "more than once",
        ),
        (
            f"AccountName=acct123;AccountKey={KEY};BlobEndpo\u0131nt=http://127.0.0.1:9/acct123",
            "ASCII letters",
        ),
        # The Kelvin sign lower-cases to an ASCII k: still not an ASCII key.
        (f"AccountName=acct123;Account\u212aey={KEY}", "ASCII letters"),
        (f"AccountName=acct123;accountname=acct123;AccountKey={KEY}", "more than once"),
        (f"AccountName=acct123;AccountKey={KEY};BlobSecondaryEndpoint=https://x", "unknown key"),
        (f"AccountName=acct123;AccountKey={KEY};DevelopmentStorageProxyUri=http://x", "unknown"),
        (f"Account_Name=acct123;AccountKey={KEY}", "ASCII letters"),
        (f"AccountName=acct123;AccountKey={KEY};garbage", "Key=Value"),
        (f"AccountName=acct123;AccountKey={KEY};EndpointSuffix=", "printable ASCII"),
        (f"AccountName=acct123;AccountKey={KEY};EndpointSuffix=core.windows.net\u200b", "ASCII"),
        (f"AccountName=acct 123;AccountKey={KEY}", "printable ASCII"),
        (f"AccountName=Acct123;AccountKey={KEY}", "AccountName"),
        (f"AccountName=acct123;AccountKey={KEY};SharedAccessSignature={SAS}", "not both"),
        ("AccountName=acct123;AccountKey=not*base64", "base64"),
        (f"AccountKey={KEY};BlobEndpoint=https://acct123.blob.core.windows.net", "AccountName"),
        (f"UseDevelopmentStorage=true;AccountKey={KEY}", "only key"),
        ("UseDevelopmentStorage=false", "only key"),
        (f"AccountName=acct123;AccountKey={KEY};DefaultEndpointsProtocol=ftp", "http or https"),
        (f"AccountName=acct123;AccountKey={KEY};EndpointSuffix=evil/path", "DNS name"),
        (f"BlobEndpoint=ftp://acct123.blob.core.windows.net;SharedAccessSignature={SAS}", "URL"),
        (f"BlobEndpoint=https://u:p@acct123.example;SharedAccessSignature={SAS}", "URL"),
        (f"BlobEndpoint=https://acct123.example/?x=1;SharedAccessSignature={SAS}", "URL"),
        (f"BlobEndpoint=https://acct123.example/a/../b;SharedAccessSignature={SAS}", "URL"),
        (f"BlobEndpoint=https://acct123.example:99999;SharedAccessSignature={SAS}", "URL"),
        (f"BlobEndpoint=https://;SharedAccessSignature={SAS}", "URL"),
        (f"BlobEndpoint=https://x.example;SharedAccessSignature={SAS}", "AccountName"),
        (";;", "empty"),
        ("A" * (MAX_CREDENTIAL_CHARS + 1), "at most"),
    ],
)
def test_malformed_connection_string_is_refused_without_quoting_it(text: str, rule: str) -> None:
    with pytest.raises(InvalidDestination, match=rule) as raised:
        parse_connection_string(text)

    assert raised.value.status == 400
    assert raised.value.inner_code == "invalidDestination"
    assert raised.value.target == "credential"
    assert KEY not in raised.value.message
    assert "127.0.0.1" not in raised.value.message


def test_blob_access_from_the_url_account_and_each_credential_kind() -> None:
    endpoint = "https://contosolake.blob.core.windows.net"

    assert blob_access("contosolake", endpoint, {"accountKey": KEY}).account_key == KEY
    assert blob_access("contosolake", endpoint, {"sasToken": f"?{SAS}"}).sas_token == SAS
    assert blob_access("contosolake", endpoint, None) == BlobAccess("contosolake", endpoint)


def test_blob_access_connection_string_must_name_the_url_account() -> None:
    with pytest.raises(InvalidDestination, match="another storage account"):
        blob_access(
            "contosolake",
            "https://contosolake.blob.core.windows.net",
            {"connectionString": f"AccountName=otheraccount;AccountKey={KEY}"},
        )


def test_blob_access_without_an_account_needs_a_connection_string() -> None:
    with pytest.raises(InvalidDestination, match="connectionString"):
        blob_access(None, None, {"accountKey": KEY})


@pytest.mark.parametrize("sas", ["", "?", "sv=1&sig=a b", "sv=1&sig=\u00e9"])
def test_malformed_sas_token_is_refused(sas: str) -> None:
    with pytest.raises(InvalidDestination, match="SAS token"):
        blob_access("contosolake", "https://contosolake.blob.core.windows.net", {"sasToken": sas})
