"""Which storage endpoints the service may connect to, and connections that keep to it.

A tenant chooses the endpoint of an Azure destination (the account in a URL, a connection
string's ``BlobEndpoint`` or ``EndpointSuffix``), so it is untrusted input. An endpoint is
allowed when

* its origin (``scheme://host:port``) is listed by the operator
  (``INDUSTRYDATA_ALLOWED_STORAGE_ENDPOINTS``): any scheme, any address, such as Azurite; or
* it is ``https`` on port 443 of a public Azure storage host
  (``<account>.blob|dfs.<cloud suffix>``) and every address its name resolves to is a public
  unicast address (not loopback, private, link-local, shared, unspecified, multicast or a
  cloud metadata address).

Anything else is refused without a connection, with one fixed message, so nothing about the
host (refused, closed, not TLS) can be learnt from the answer. ``EndpointPolicy.check`` is
the check at accept time; ``guarded_pool_classes`` give urllib3 connections that apply the
same policy at every connect and connect only to the addresses they checked (a name cannot
rebind between the check and the connection).

Names are resolved through ``resolve``, the one seam tests replace (no public DNS look-up
may happen in a test).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from ..errors import DestinationUnreachable, InvalidDestination

__all__ = [
    "PUBLIC_STORAGE_SUFFIXES",
    "EndpointPolicy",
    "Resolver",
    "guarded_pool_classes",
    "origin",
    "public_storage_account",
    "resolve",
]

PUBLIC_STORAGE_SUFFIXES = ("core.windows.net", "core.chinacloudapi.cn", "core.usgovcloudapi.net")
"""DNS suffixes of Azure Storage in the public cloud, Azure China and Azure Government
(Azure Germany's ``core.cloudapi.de`` closed in 2021)."""

_PUBLIC_HOST = re.compile(
    r"^(?P<account>[a-z0-9]{3,24})\.(?P<service>blob|dfs)\."
    r"(?P<suffix>" + "|".join(re.escape(suffix) for suffix in PUBLIC_STORAGE_SUFFIXES) + r")$"
)

_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("168.63.129.16")})
"""Azure's WireServer: a public-range address every Azure VM reaches, never storage. The
other clouds' metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200) are
link-local, private or shared addresses, refused as such."""

_NOT_ALLOWED = (
    "The storage endpoint is not a public Azure storage host over https and its origin is "
    "not in the allowed storage endpoints."
)
_NOT_PUBLIC = (
    "The storage endpoint resolves to an address that is not public, and its origin is not "
    "in the allowed storage endpoints."
)
_UNRESOLVED = "The storage endpoint's host name cannot be resolved."
_DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port)`` → the IP addresses to connect to, as strings."""


def resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host``: the seam tests replace.

    Raises:
        OSError: the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def origin(url: str) -> str | None:
    """``scheme://host:port`` of an http(s) URL, lower-case with the port explicit; None if
    the URL has no such origin (another scheme, no host, a bad port, credentials in it)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return _origin(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme])


def public_storage_account(host: str) -> tuple[str, str] | None:
    """``(account, cloud suffix)`` when ``host`` is a public Azure blob or dfs host."""
    match = _PUBLIC_HOST.fullmatch(host)
    return (match["account"], match["suffix"]) if match else None


@dataclass(frozen=True)
class EndpointPolicy:
    """The allowed storage origins and how names are resolved."""

    allowed_origins: frozenset[str]
    resolver: Resolver | None = None  # None: the module's ``resolve``, looked up at each use

    @classmethod
    def from_allowed(
        cls, allowed_origins: Iterable[str], resolver: Resolver | None = None
    ) -> EndpointPolicy:
        """The policy listing ``allowed_origins`` (as configured; malformed entries match
        nothing)."""
        listed = {origin(entry) for entry in allowed_origins}
        return cls(frozenset(entry for entry in listed if entry), resolver)

    def check(self, url: str) -> None:
        """Refuse an endpoint the service must not connect to, before any connection.

        Raises:
            InvalidDestination: not listed, and not a public Azure storage host over https
                whose addresses are all public.
            DestinationUnreachable: a public Azure storage host whose name does not resolve.
        """
        endpoint = origin(url)
        if endpoint is None:
            raise InvalidDestination(_NOT_ALLOWED, target="url")
        if endpoint not in self.allowed_origins:
            parts = urlsplit(url.strip())
            scheme = parts.scheme.lower()
            self.addresses(scheme, parts.hostname or "", parts.port or _DEFAULT_PORTS[scheme])

    def addresses(self, scheme: str, host: str, port: int) -> list[str]:
        """The addresses a connection to ``scheme://host:port`` may use.

        Raises:
            InvalidDestination: the endpoint or one of its addresses is not allowed.
            DestinationUnreachable: the name does not resolve.
        """
        host = host.strip("[]").lower()
        listed = _origin(scheme, host, port) in self.allowed_origins
        if not listed and (
            scheme != "https" or port != 443 or public_storage_account(host) is None
        ):
            raise InvalidDestination(_NOT_ALLOWED, target="url")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = list((self.resolver or resolve)(host, port))
            except OSError:
                raise DestinationUnreachable(_UNRESOLVED, target="url") from None
        if not addresses:
            raise DestinationUnreachable(_UNRESOLVED, target="url")
        if not listed and not all(_is_public(address) for address in addresses):
            raise InvalidDestination(_NOT_PUBLIC, target="url")
        return addresses


def _origin(scheme: str, host: str, port: int) -> str:
    host = host.lower()
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    embedded = _embedded_ipv4(ip)
    return (
        ip.is_global
        and not ip.is_multicast
        and ip not in _METADATA_ADDRESSES
        and (embedded is None or _is_public(str(embedded)))
    )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which the network may
    reach in its place."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class _GuardedConnection(HTTPConnection):
    """Resolves through the policy and connects only to an address it allowed.

    Raises (from ``connect``):
        InvalidDestination: the policy refuses the endpoint or its addresses.
    """

    endpoint_policy: EndpointPolicy
    endpoint_scheme: str

    def _new_conn(self) -> socket.socket:
        # A refusal is the policy's InvalidDestination, raised as is: no HTTP library
        # retries it. A name that does not resolve may be a passing failure: retried.
        try:
            addresses = self.endpoint_policy.addresses(
                self.endpoint_scheme, self._dns_host, self.port
            )
        except DestinationUnreachable:
            raise NewConnectionError(self, "The storage endpoint does not resolve.") from None
        error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, "The storage endpoint timed out.") from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, "The storage endpoint refused the connection.") from error


def guarded_pool_classes(policy: EndpointPolicy) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes by scheme whose connections keep to ``policy``
    (for ``PoolManager.pool_classes_by_scheme``)."""

    class GuardedHTTPConnection(_GuardedConnection):
        endpoint_policy = policy
        endpoint_scheme = "http"

    class GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
        endpoint_policy = policy
        endpoint_scheme = "https"

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}
