"""Destination URLs: parse and validate what an invitee gives, and open the destination.

Accepted URLs (api-contract §4):

* ``file:///absolute/path``: a local folder, which must resolve inside an allowed root;
* ``abfss://container@account.dfs.<cloud suffix>/path``: ADLS Gen2 / Blob storage of the
  public cloud (``core.windows.net``), Azure China or Azure Government;
* ``az://container/path``: Blob storage whose account comes from a connection string.

Credentials are one string-keyed dict with exactly one of ``accountKey``, ``sasToken``,
``connectionString``, read once into a ``BlobAccess`` (``blob_access``); they are kept out
of ``repr`` and out of every error message, and so is the URL itself (a pasted URL may carry
a SAS token). The storage endpoint must pass the ``EndpointPolicy`` before it is opened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import InvalidDestination
from .azure import AzureBlobDestination
from .blob_access import MAX_CREDENTIAL_CHARS, BlobAccess, blob_access
from .destination import Destination
from .endpoints import EndpointPolicy, Resolver, public_storage_account
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

_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$|^\$root$")


@dataclass(frozen=True)
class DestinationSpec:
    """A validated destination: where (scheme and location), in which format, with what key.

    For ``file`` destinations ``path`` is the local folder as given; for Azure ones it is the
    folder inside the container ('' for the container's root), ``access`` the account, blob
    endpoint and secret read from the credential, and ``credential`` the credential as given.
    """

    scheme: str
    format: str
    path: str
    container: str | None = None
    access: BlobAccess | None = None
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
    allowed_storage_endpoints: Sequence[str],
    resolver: Resolver | None = None,
) -> Destination:
    """The destination ``spec`` names, after the checks that depend on configuration.

    Args:
        spec: a parsed destination.
        allowed_local_roots: folders a ``file://`` destination may resolve into.
        allowed_storage_endpoints: origins (``scheme://host:port``) of storage endpoints
            allowed besides the public Azure storage hosts (see ``lake.endpoints``).
        resolver: how host names are resolved; None for the system's (``endpoints.resolve``).

    Raises:
        InvalidDestination: the folder escapes the allowed roots, or the storage endpoint
            is not allowed.
        DestinationUnreachable: the local folder cannot be created, or the storage
            endpoint's name does not resolve.
    """
    if spec.scheme == "file":
        return LocalDestination(_allowed_folder(Path(spec.path), allowed_local_roots))
    assert spec.access is not None and spec.container is not None
    policy = EndpointPolicy.from_allowed(allowed_storage_endpoints, resolver)
    policy.check(spec.access.blob_endpoint)
    return AzureBlobDestination(
        access=spec.access, container=spec.container, prefix=spec.path, endpoints=policy
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
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CREDENTIAL_CHARS:
        raise InvalidDestination(
            f"The credential value must be a non-empty string of at most "
            f"{MAX_CREDENTIAL_CHARS} characters.",
            target="credential",
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
    public = public_storage_account(host.lower())
    if not at or public is None or not host.lower().startswith(f"{public[0]}.dfs."):
        raise InvalidDestination(
            "abfss:// URLs must look like abfss://container@account.dfs.core.windows.net/path.",
            target="url",
        )
    account, suffix = public
    return DestinationSpec(
        scheme="abfss",
        format=format,
        path=_container_path(path),
        container=_checked_container(container),
        access=blob_access(account, f"https://{account}.blob.{suffix}", credential),
        credential=credential,
    )


def _parse_az(
    netloc: str, path: str, format: str, credential: Mapping[str, str] | None
) -> DestinationSpec:
    return DestinationSpec(
        scheme="az",
        format=format,
        path=_container_path(path),
        container=_checked_container(netloc),
        access=blob_access(None, None, credential),
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


def _allowed_folder(requested: Path, allowed_roots: Sequence[Path]) -> Path:
    """The folder, resolved (symlinks and '..' followed), inside an allowed root.

    Nothing is created here: the folder is made by the first write (the accept's probe), after
    the destination's claim was checked, and never through a link planted since
    (``LocalDestination`` follows none)."""
    roots = [Path(root).resolve() for root in allowed_roots]
    return _inside(requested.resolve(), roots)


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
