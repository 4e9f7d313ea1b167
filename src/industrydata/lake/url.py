"""Destination URLs: parse and validate what an invitee gives, and open the destination.

Accepted URLs (api-contract §4):

* ``file:///absolute/path``: a local folder, which must resolve inside an allowed root;
* ``abfss://container@account.dfs.core.windows.net/path``: ADLS Gen2 / Blob storage;
* ``az://container/path``: Blob storage whose account comes from a connection string.

Credentials are one string-keyed dict with exactly one of ``accountKey``, ``sasToken``,
``connectionString``; they are kept out of ``repr`` and out of every error message, and so
is the URL itself (a pasted URL may carry a SAS token).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import InvalidDestination
from ._storage_errors import storage_errors, unreachable_on_failure
from .azure import AzureBlobDestination
from .destination import Destination
from .local import LocalDestination

__all__ = [
    "CREDENTIAL_KINDS",
    "FORMATS",
    "DestinationSpec",
    "open_destination",
    "parse_destination",
]

FORMATS = ("sdsCsv", "delta", "parquet")
CREDENTIAL_KINDS = ("accountKey", "sasToken", "connectionString")

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$|^\$root$")
_DFS_HOST_SUFFIX = ".dfs.core.windows.net"


@dataclass(frozen=True)
class DestinationSpec:
    """A validated destination: where (scheme and location), in which format, with what key.

    For ``file`` destinations ``path`` is the local folder as given; for Azure ones it is the
    folder inside the container ('' for the container's root).
    """

    scheme: str
    format: str
    path: str
    account: str | None = None
    container: str | None = None
    blob_endpoint: str | None = None
    credential: Mapping[str, str] | None = field(default=None, repr=False)

    @property
    def credential_kind(self) -> str | None:
        """``accountKey``, ``sasToken``, ``connectionString``, or None."""
        return next(iter(self.credential)) if self.credential else None


def parse_destination(
    url: str, *, format: str = "sdsCsv", credential: Mapping[str, str] | None = None
) -> DestinationSpec:
    """Check the syntax of a destination URL, format and credential.

    Raises:
        InvalidDestination: naming the rule broken, never echoing the URL or credential.
    """
    if format not in FORMATS:
        raise InvalidDestination(
            f"Unknown destination format; expected one of {', '.join(FORMATS)}.",
            target="format",
        )
    credential = _check_credential(credential)
    if not isinstance(url, str) or any(ord(char) < 32 for char in url):
        raise InvalidDestination("The destination URL is not a valid URL.", target="url")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise InvalidDestination(
            "The destination URL must not carry a query or fragment; pass secrets as the "
            "credential.",
            target="url",
        )
    scheme = parts.scheme.lower()
    if scheme == "file":
        return _parse_file(parts.netloc, parts.path, format, credential)
    if scheme == "abfss":
        return _parse_abfss(parts.netloc, parts.path, format, credential)
    if scheme == "az":
        return _parse_az(parts.netloc, parts.path, format, credential)
    raise InvalidDestination(
        "Unsupported destination URL scheme; use abfss://, az:// or file://.", target="url"
    )


def open_destination(
    spec: DestinationSpec,
    *,
    allowed_local_roots: Sequence[Path],
    allowed_http_endpoints: Sequence[str],
) -> Destination:
    """The destination ``spec`` names, after the checks that depend on configuration.

    Args:
        spec: a parsed destination.
        allowed_local_roots: folders a ``file://`` destination may resolve into.
        allowed_http_endpoints: origins whose plain-http blob endpoints are accepted.

    Raises:
        InvalidDestination: the folder escapes the allowed roots, the blob endpoint is plain
            http and not allowed, or the Azure SDK cannot use the credential.
        DestinationUnreachable: the local folder cannot be created.
    """
    if spec.scheme == "file":
        return LocalDestination(_allowed_folder(Path(spec.path), allowed_local_roots))
    if urlsplit(spec.blob_endpoint).scheme.lower() == "http":
        allowed = {endpoint.rstrip("/").lower() for endpoint in allowed_http_endpoints}
        if _origin(spec.blob_endpoint) not in allowed:
            raise InvalidDestination(
                "The blob endpoint is not https:// and its origin is not allowed.",
                target="credential",
            )
    return AzureBlobDestination(
        blob_endpoint=spec.blob_endpoint,
        account=spec.account,
        container=spec.container,
        prefix=spec.path,
        credential=spec.credential,
    )


def _check_credential(credential: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if credential is None:
        return None
    if (
        not isinstance(credential, Mapping)
        or len(credential) != 1
        or next(iter(credential)) not in CREDENTIAL_KINDS
    ):
        raise InvalidDestination(
            f"The credential must hold exactly one of {', '.join(CREDENTIAL_KINDS)}.",
            target="credential",
        )
    value = next(iter(credential.values()))
    if not isinstance(value, str) or not value.strip():
        raise InvalidDestination(
            "The credential value must be a non-empty string.", target="credential"
        )
    return dict(credential)


def _parse_file(
    netloc: str, path: str, format: str, credential: Mapping[str, str] | None
) -> DestinationSpec:
    if netloc not in ("", "localhost"):
        raise InvalidDestination("file:// URLs must name a local absolute path.", target="url")
    local = unquote(path)
    if not local.startswith("/") or "\x00" in local:
        raise InvalidDestination("file:// URLs must name a local absolute path.", target="url")
    if credential is not None:
        raise InvalidDestination("Local destinations take no credential.", target="credential")
    return DestinationSpec(scheme="file", format=format, path=local)


def _parse_abfss(
    netloc: str, path: str, format: str, credential: Mapping[str, str] | None
) -> DestinationSpec:
    container, at, host = netloc.partition("@")
    account = host.lower().removesuffix(_DFS_HOST_SUFFIX)
    if not at or account == host.lower() or not _ACCOUNT.match(account):
        raise InvalidDestination(
            "abfss:// URLs must look like abfss://container@account.dfs.core.windows.net/path.",
            target="url",
        )
    settings = _connection_settings(credential)
    if settings and settings["AccountName"] != account:
        raise InvalidDestination(
            "The connection string names another storage account than the URL.",
            target="credential",
        )
    endpoint = settings["BlobEndpoint"] if settings else f"https://{account}.blob.core.windows.net"
    return DestinationSpec(
        scheme="abfss",
        format=format,
        path=_container_path(path),
        account=account,
        container=_checked_container(container),
        blob_endpoint=endpoint,
        credential=credential,
    )


def _parse_az(
    netloc: str, path: str, format: str, credential: Mapping[str, str] | None
) -> DestinationSpec:
    settings = _connection_settings(credential)
    if not settings:
        raise InvalidDestination(
            "az:// destinations need a connectionString credential naming the account.",
            target="credential",
        )
    return DestinationSpec(
        scheme="az",
        format=format,
        path=_container_path(path),
        account=settings["AccountName"],
        container=_checked_container(netloc),
        blob_endpoint=settings["BlobEndpoint"],
        credential=credential,
    )


def _checked_container(container: str) -> str:
    if not _CONTAINER.match(container):
        raise InvalidDestination(
            "The container name must be 3-63 lowercase letters, digits or single hyphens.",
            target="url",
        )
    return container


def _container_path(path: str) -> str:
    folder = unquote(path).strip("/")
    if folder and any(part in ("", ".", "..") for part in folder.split("/")):
        raise InvalidDestination(
            "The path inside the container must not have empty, '.' or '..' segments.",
            target="url",
        )
    return folder


# The development storage shorthand of Azure tools, which Azurite serves.
_DEVELOPMENT_STORAGE = {
    "AccountName": "devstoreaccount1",
    "BlobEndpoint": "http://127.0.0.1:10000/devstoreaccount1",
}


def _connection_settings(credential: Mapping[str, str] | None) -> dict[str, str] | None:
    """AccountName and BlobEndpoint of a connectionString credential (None for other kinds).

    The rules are the Azure SDK's, which reads the same string when the destination is
    opened: keys are case-insensitive; ``BlobEndpoint`` wins, else the protocol and suffix
    when both are given, else ``https://<account>.blob.core.windows.net``. A SAS connection
    string often has no AccountName: the account is then the endpoint's (its first host
    label, or its first path segment for path-style endpoints such as Azurite's).
    """
    if not credential or "connectionString" not in credential:
        return None
    pairs: dict[str, str] = {}
    for item in credential["connectionString"].split(";"):
        if item.strip():
            key, equals, value = item.partition("=")
            if not equals:
                raise InvalidDestination(
                    "The connection string is not a list of Key=Value pairs.", target="credential"
                )
            pairs[key.strip().lower()] = value.strip()
    if pairs.get("usedevelopmentstorage") == "true":
        return dict(_DEVELOPMENT_STORAGE)
    account = pairs.get("accountname", "")
    endpoint = pairs.get("blobendpoint", "")
    if not endpoint and account:
        suffix = pairs.get("endpointsuffix")
        protocol = pairs.get("defaultendpointsprotocol") if suffix else None
        endpoint = f"{protocol or 'https'}://{account}.blob.{suffix or 'core.windows.net'}"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidDestination(
            "The connection string must name a valid AccountName or BlobEndpoint.",
            target="credential",
        )
    if not account:
        path_segments = [segment for segment in parts.path.split("/") if segment]
        account = path_segments[0] if path_segments else parts.hostname.split(".", 1)[0]
    if not _ACCOUNT.match(account):
        raise InvalidDestination(
            "The connection string must name a valid AccountName.", target="credential"
        )
    return {"AccountName": account, "BlobEndpoint": endpoint.rstrip("/")}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed_folder(requested: Path, allowed_roots: Sequence[Path]) -> Path:
    """The folder, resolved (symlinks and '..' followed), created, inside an allowed root."""
    roots = [Path(root).resolve() for root in allowed_roots]
    folder = _inside(requested.resolve(), roots)
    with unreachable_on_failure(), storage_errors("create", ""):
        folder.mkdir(parents=True, exist_ok=True)
    # Resolve again: a symlink planted while the folders were being created must not win.
    return _inside(folder.resolve(), roots)


def _inside(folder: Path, roots: Sequence[Path]) -> Path:
    if not any(folder.is_relative_to(root) for root in roots):
        raise InvalidDestination(
            "The local folder is outside the allowed destination roots.", target="url"
        )
    if folder in roots:
        # A flow holding a whole root would keep every other flow out of it.
        raise InvalidDestination(
            "The local folder must be a folder inside an allowed destination root, not the "
            "root itself.",
            target="url",
        )
    return folder
