"""A destination in an Azure Blob Storage container (``abfss://`` and ``az://`` URLs).

Only blob-API operations on the default path are used, so the same code serves plain Blob
accounts, ADLS Gen2 (hierarchical namespace) accounts and the Azurite emulator. Atomicity
comes from the block blob model: a small object is one Put Blob; a streamed one is staged
block by block as data arrives and appears only when its block list is committed, so a
writer that fails or is killed leaves uncommitted blocks (invisible, collected by the
service) and never a half-written blob under the final name.

On ADLS Gen2 accounts the blob API also lists the folders as empty blobs carrying the
metadata ``hdi_isfolder=true``; they are not objects here, and a folder delete removes them
after their contents, deepest first.

The SDK client is built from a checked ``BlobAccess`` (endpoint and secret, never a raw
connection string) and sends through a transport whose connections keep to the
``EndpointPolicy`` at every connect: no proxy from the environment, no redirect followed.

This is the only module that imports the Azure SDK; its exceptions are translated by
``_storage_errors`` like every other storage library's.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobProperties,
    ContainerClient,
    ExponentialRetry,
)
from requests import Session
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .blob_access import BlobAccess
from .destination import Destination, DestinationIdentity
from .endpoints import EndpointPolicy, guarded_pool_classes

__all__ = ["AzureBlobDestination"]

BLOCK_SIZE = 8 * 1024 * 1024
"""Bytes buffered before a block is staged: few enough requests, bounded memory, and room
for 400 GB under the service's 50,000-blocks-per-blob limit."""

_FOLDER_MARKER = "hdi_isfolder"
_CONNECTION_TIMEOUT_SECONDS = 10
_READ_TIMEOUT_SECONDS = 60


class AzureBlobDestination(Destination):
    """Objects as block blobs named ``<prefix>/<path>`` in one container.

    ``access`` gives the endpoint and secret (an account key, a SAS token, or none for
    anonymous access); ``endpoints`` is the policy every connection keeps to.
    ``open_destination`` builds it from a checked URL and credential.
    """

    def __init__(
        self,
        *,
        access: BlobAccess,
        container: str,
        prefix: str,
        endpoints: EndpointPolicy,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        self.prefix = prefix.strip("/")
        self.block_size = block_size
        self._access = access
        self._container = _container_client(access, container, endpoints)

    @property
    def url(self) -> str:
        """The container's URL (no credential in it)."""
        return self._container.url.split("?", 1)[0]

    def __repr__(self) -> str:
        return f"AzureBlobDestination({self.url!r}, prefix={self.prefix!r})"

    def identity(self) -> DestinationIdentity:
        """The container at its endpoint (scheme, host and port lower-cased, the default
        port dropped, as the SDK addresses it) and the prefix."""
        parts = urlsplit(self.url)
        port = parts.port
        default = {"https": 443, "http": 80}.get(parts.scheme.lower())
        host = parts.hostname or ""
        host = (f"[{host}]" if ":" in host else host) + (
            f":{port}" if port and port != default else ""
        )
        namespace = f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"
        return DestinationIdentity(namespace, self.prefix)

    def delta_location(self) -> tuple[str, dict[str, str]]:
        """``az://<container>/<prefix>`` and object_store's Azure options for the access."""
        access = self._access
        options = {"account_name": access.account}
        if access.account_key:
            options["account_key"] = access.account_key
        if access.sas_token:
            options["sas_token"] = access.sas_token
        if access.blob_endpoint != f"https://{access.account}.blob.core.windows.net":
            options["endpoint"] = access.blob_endpoint
            options["allow_http"] = str(access.blob_endpoint.startswith("http://")).lower()
        root = f"az://{self._container.container_name}"
        return (f"{root}/{self.prefix}" if self.prefix else root), options

    def _name(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix and path else self.prefix or path

    def _blob(self, path: str) -> BlobClient:
        return self._container.get_blob_client(self._name(path))

    def _write_bytes(self, path: str, data: bytes) -> None:
        self._blob(path).upload_blob(data, overwrite=True)

    def _create_new(self, path: str, data: bytes) -> bool:
        # Without overwrite the upload is conditional (If-None-Match: *).
        try:
            self._blob(path).upload_blob(data, overwrite=False)
        except ResourceExistsError:
            return False
        return True

    @contextmanager
    def _open_writer(self, path: str) -> Iterator[BinaryIO]:
        stream = _BlockStream(self._blob(path), self.block_size)
        yield cast(BinaryIO, stream)
        stream.commit()

    def _read_bytes(self, path: str) -> bytes:
        return self._blob(path).download_blob().readall()

    def _exists(self, path: str) -> bool:
        try:
            properties = self._blob(path).get_blob_properties()
        except ResourceNotFoundError as exc:
            if exc.error_code == "BlobNotFound":
                return False
            raise
        return not _is_folder(properties.metadata)

    def _list(self, prefix: str) -> list[str]:
        folder = self._name(prefix)
        start = len(self.prefix) + 1 if self.prefix else 0
        return [
            blob.name[start:]
            for blob in self._listing(folder + "/" if folder else None)
            if not _is_folder(blob.metadata)
        ]

    def _delete(self, path: str) -> None:
        name = self._name(path)
        blobs = [
            blob
            for blob in self._listing(name)
            if blob.name == name or blob.name.startswith(name + "/")
        ]
        files = [blob.name for blob in blobs if not _is_folder(blob.metadata)]
        folders = sorted((blob.name for blob in blobs if _is_folder(blob.metadata)), reverse=True)
        for blob_name in files + folders:
            try:
                self._container.delete_blob(blob_name)
            except ResourceNotFoundError as exc:  # deleted meanwhile: the goal is reached
                if exc.error_code != "BlobNotFound":
                    raise

    def _listing(self, starts_with: str | None) -> Iterable[BlobProperties]:
        """Every blob whose name starts with ``starts_with``, folder markers included."""
        return self._container.list_blobs(name_starts_with=starts_with, include=["metadata"])


class _BlockStream(io.RawIOBase):
    """Buffers writes, stages a block whenever ``block_size`` bytes are buffered, and makes
    the blob in ``commit``: one Put Blob when nothing was staged, else Put Block List."""

    def __init__(self, blob: BlobClient, block_size: int) -> None:
        super().__init__()
        self._blob = blob
        self._block_size = block_size
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        if len(self._buffer) >= self._block_size:
            self._stage()
        return view.nbytes

    def _stage(self) -> None:
        # Random ids: a concurrent or killed writer of the same name stages blocks that
        # this writer's block list never names.
        block_id = uuid.uuid4().hex
        self._blob.stage_block(block_id, bytes(self._buffer))
        self._blocks.append(BlobBlock(block_id=block_id))
        self._buffer.clear()

    def commit(self) -> None:
        if not self._blocks:
            self._blob.upload_blob(bytes(self._buffer), overwrite=True)
        else:
            if self._buffer:
                self._stage()
            self._blob.commit_block_list(self._blocks)
        self.close()


def _is_folder(metadata: Mapping[str, str] | None) -> bool:
    return bool(metadata) and metadata.get(_FOLDER_MARKER, "").lower() == "true"


def _container_client(
    access: BlobAccess, container: str, endpoints: EndpointPolicy
) -> ContainerClient:
    credential: dict[str, str] | str | None = access.sas_token
    if access.account_key:
        credential = {"account_name": access.account, "account_key": access.account_key}
    return ContainerClient(
        access.blob_endpoint,
        container,
        credential=credential,
        transport=_GuardedTransport(
            endpoints,
            connection_timeout=_CONNECTION_TIMEOUT_SECONDS,
            read_timeout=_READ_TIMEOUT_SECONDS,
        ),
        # An unreachable endpoint fails an accept's probe in seconds rather than after the
        # SDK's default minute of back-off; transient errors during a run are still retried.
        retry_policy=ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3),
        permit_redirects=False,
    )


class _GuardedTransport(RequestsTransport):
    """The SDK's requests transport, its connections made by ``guarded_pool_classes`` and
    never through a proxy named by the environment (the policy checks the real peer)."""

    def __init__(self, endpoints: EndpointPolicy, **options: Any) -> None:
        super().__init__(use_env_settings=False, **options)
        self._endpoints = endpoints

    def _init_session(self, session: Session) -> None:
        super()._init_session(session)
        adapter = _GuardedAdapter(
            self._endpoints, max_retries=Retry(total=False, redirect=False, raise_on_status=False)
        )
        for protocol in self._protocols:
            session.mount(protocol, adapter)


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, endpoints: EndpointPolicy, **options: Any) -> None:
        self._endpoints = endpoints
        super().__init__(**options)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = guarded_pool_classes(self._endpoints)
