"""What the service needs to reach a blob account, read once from a tenant's credential.

``BlobAccess`` is the account, its blob endpoint and at most one secret (an account key or a
SAS token). A connection string is parsed here and nowhere else, strictly: keys are ASCII
letters compared without case, each known and given once; values are printable ASCII without
spaces; the whole string is bounded. The Azure SDK is then built from these parts, never from
the string, so no second parser can read another endpoint out of it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import InvalidDestination

__all__ = [
    "CONNECTION_STRING_KEYS",
    "MAX_CREDENTIAL_CHARS",
    "BlobAccess",
    "blob_access",
    "parse_connection_string",
]

MAX_CREDENTIAL_CHARS = 4096
"""Longest credential value (key, SAS token or connection string) accepted."""

_USED_KEYS = (
    "AccountName",
    "AccountKey",
    "SharedAccessSignature",
    "BlobEndpoint",
    "DefaultEndpointsProtocol",
    "EndpointSuffix",
    "UseDevelopmentStorage",
)
_OTHER_SERVICES_KEYS = ("QueueEndpoint", "TableEndpoint", "FileEndpoint")
"""Endpoints of other storage services, which the portal's SAS connection strings carry:
accepted (checked like any value) and never used."""
CONNECTION_STRING_KEYS = _USED_KEYS + _OTHER_SERVICES_KEYS
_CANONICAL_KEYS = {key.lower(): key for key in CONNECTION_STRING_KEYS}

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_KEY = re.compile(r"^[A-Za-z]+$")
_VALUE = re.compile(r"^[\x21-\x7e]*$")  # printable ASCII, no space
_SUFFIX = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")

# Azurite's development account: the well-known key every Azure tool documents.
_DEVELOPMENT_ACCOUNT = "devstoreaccount1"
_DEVELOPMENT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_DEVELOPMENT_ENDPOINT = f"http://127.0.0.1:10000/{_DEVELOPMENT_ACCOUNT}"


@dataclass(frozen=True)
class BlobAccess:
    """A blob account's endpoint (``scheme://host[:port][/path]``, no trailing slash) and
    secret: ``account_key``, ``sas_token`` (without '?'), or neither (anonymous)."""

    account: str
    blob_endpoint: str
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)


def blob_access(
    account: str | None, endpoint: str | None, credential: Mapping[str, str] | None
) -> BlobAccess:
    """The access a destination's credential gives: to ``account`` at ``endpoint`` (the
    URL's), unless a connection string names the endpoint; both None when the URL names no
    account and a connection string must.

    Raises:
        InvalidDestination: the credential is malformed, names no account when one is
            needed, or names another account than the URL.
    """
    kind, value = next(iter(credential.items())) if credential else (None, None)
    if kind == "connectionString":
        access = parse_connection_string(value or "")
        if account is not None and access.account != account:
            raise InvalidDestination(
                "The connection string names another storage account than the URL.",
                target="credential",
            )
        return access
    if account is None or endpoint is None:
        raise InvalidDestination(
            "az:// destinations need a connectionString credential naming the account.",
            target="credential",
        )
    if kind == "accountKey":
        return BlobAccess(account, endpoint, account_key=_account_key(value or ""))
    if kind == "sasToken":
        return BlobAccess(account, endpoint, sas_token=_sas_token(value or ""))
    return BlobAccess(account, endpoint)


def parse_connection_string(text: str) -> BlobAccess:
    """The account, blob endpoint and secret of an Azure Storage connection string.

    ``BlobEndpoint`` gives the endpoint, else ``AccountName`` with ``DefaultEndpointsProtocol``
    (default https) and ``EndpointSuffix`` (default core.windows.net). Without
    ``AccountName`` the account is the endpoint's (its first path segment for path-style
    endpoints such as Azurite's, else its first host label). ``UseDevelopmentStorage=true``
    stands alone and means Azurite's development account.

    Raises:
        InvalidDestination: naming the rule broken, never a key or value of the string.
    """
    settings = _settings(text)
    if "UseDevelopmentStorage" in settings:
        if settings != {"UseDevelopmentStorage": "true"}:
            raise _invalid("UseDevelopmentStorage=true must be the connection string's only key.")
        return BlobAccess(_DEVELOPMENT_ACCOUNT, _DEVELOPMENT_ENDPOINT, account_key=_DEVELOPMENT_KEY)
    if "AccountKey" in settings and "SharedAccessSignature" in settings:
        raise _invalid(
            "The connection string must hold AccountKey or SharedAccessSignature, not both."
        )
    account = settings.get("AccountName")
    if account is not None and not _ACCOUNT.fullmatch(account):
        raise _invalid("The connection string must name a valid AccountName.")
    endpoint = _endpoint(settings, account)
    if account is None:
        if "AccountKey" in settings:
            raise _invalid("A connection string with an AccountKey must name the AccountName.")
        account = _endpoint_account(endpoint)
    key, sas = settings.get("AccountKey"), settings.get("SharedAccessSignature")
    return BlobAccess(
        account,
        endpoint,
        account_key=_account_key(key) if key is not None else None,
        sas_token=_sas_token(sas) if sas is not None else None,
    )


def _settings(text: str) -> dict[str, str]:
    """The key/value pairs, keys in their canonical spelling."""
    if not isinstance(text, str) or len(text) > MAX_CREDENTIAL_CHARS:
        raise _invalid(f"The connection string must be at most {MAX_CREDENTIAL_CHARS} characters.")
    settings: dict[str, str] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        key, equals, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not equals:
            raise _invalid("The connection string is not a list of Key=Value pairs.")
        if not _KEY.fullmatch(key):
            raise _invalid("The connection string's keys must be ASCII letters.")
        canonical = _CANONICAL_KEYS.get(key.lower())
        if canonical is None:
            raise _invalid(
                "The connection string has an unknown key; known keys are "
                f"{', '.join(CONNECTION_STRING_KEYS)}."
            )
        if canonical in settings:
            raise _invalid("The connection string gives a key more than once.")
        if not value or not _VALUE.fullmatch(value):
            raise _invalid("The connection string's values must be printable ASCII without spaces.")
        settings[canonical] = value
    if not settings:
        raise _invalid("The connection string is empty.")
    return settings


def _endpoint(settings: Mapping[str, str], account: str | None) -> str:
    if "BlobEndpoint" in settings:
        return _checked_endpoint(settings["BlobEndpoint"])
    if account is None:
        raise _invalid("The connection string must name an AccountName or a BlobEndpoint.")
    protocol = settings.get("DefaultEndpointsProtocol", "https").lower()
    suffix = settings.get("EndpointSuffix", "core.windows.net").lower()
    if protocol not in ("http", "https"):
        raise _invalid("DefaultEndpointsProtocol must be http or https.")
    if not _SUFFIX.fullmatch(suffix):
        raise _invalid("EndpointSuffix must be a DNS name.")
    return f"{protocol}://{account}.blob.{suffix}"


def _checked_endpoint(url: str) -> str:
    """An http(s) URL with a host, no user, query or fragment, and plain path segments."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _invalid("BlobEndpoint must be an http:// or https:// URL.") from None
    segments = [segment for segment in parts.path.split("/") if segment]
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or any(not _SEGMENT.fullmatch(s) or s in (".", "..") for s in segments)
    ):
        raise _invalid(
            "BlobEndpoint must be an http:// or https:// URL with a host and plain path "
            "segments, without user, query or fragment."
        )
    path = "".join(f"/{segment}" for segment in segments)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def _endpoint_account(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    segments = [segment for segment in parts.path.split("/") if segment]
    account = segments[0] if segments else (parts.hostname or "").split(".", 1)[0]
    if not _ACCOUNT.fullmatch(account):
        raise _invalid("The connection string must name a valid AccountName.")
    return account


def _account_key(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded or len(value) > MAX_CREDENTIAL_CHARS:
        raise _invalid("The account key must be base64.")
    return value


def _sas_token(value: str) -> str:
    token = value.removeprefix("?")
    if not token or len(token) > MAX_CREDENTIAL_CHARS or not _VALUE.fullmatch(token):
        raise _invalid("The SAS token must be a query string of printable ASCII.")
    return token


def _invalid(message: str) -> InvalidDestination:
    return InvalidDestination(message, target="credential")
