"""The storage endpoint policy: public Azure storage hosts over https whose names resolve to
public addresses, or origins the operator listed; everything else is refused before any
connection, with one message. Connections made through the guarded pools apply the same
policy at every connect and use only the addresses they checked.

Names are resolved through the policy's resolver (a table here): no DNS look-up happens."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import urllib3
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from industrydata.errors import DestinationUnreachable, InvalidDestination
from industrydata.lake.endpoints import (
    EndpointPolicy,
    guarded_pool_classes,
    origin,
    public_storage_account,
)
from tests.lake.servers import counting_server

PUBLIC_ADDRESS = "20.150.0.1"  # in a public Azure range; never connected to here
PUBLIC_HOST = "contosolake.blob.core.windows.net"


def _resolver(table: dict[str, Sequence[str]], asked: list[str] | None = None):
    def resolve(host: str, port: int) -> Sequence[str]:
        if asked is not None:
            asked.append(host)
        if host not in table:
            raise OSError("name does not resolve")
        return table[host]

    return resolve


def _policy(
    allowed: Sequence[str] = (), table: dict[str, Sequence[str]] | None = None, **kwargs: object
) -> EndpointPolicy:
    return EndpointPolicy.from_allowed(allowed, _resolver(table or {}, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("contosolake.blob.core.windows.net", ("contosolake", "core.windows.net")),
        ("contosolake.dfs.core.windows.net", ("contosolake", "core.windows.net")),
        ("contosolake.blob.core.chinacloudapi.cn", ("contosolake", "core.chinacloudapi.cn")),
        ("contosolake.dfs.core.usgovcloudapi.net", ("contosolake", "core.usgovcloudapi.net")),
        ("contosolake.blob.core.cloudapi.de", None),
        ("contosolake.queue.core.windows.net", None),
        ("contosolake.blob.core.windows.net.", None),
        ("contosolake.blob.core.windows.net.attacker.example", None),
        ("a.b.contosolake.blob.core.windows.net", None),
        ("ab.blob.core.windows.net", None),
        ("contosolake.blob.core.windows.net\n", None),
        ("127.0.0.1", None),
        ("localhost", None),
    ],
)
def test_public_storage_account_recognises_only_azure_storage_hosts(
    host: str, expected: tuple[str, str] | None
) -> None:
    assert public_storage_account(host) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:10000/", "http://127.0.0.1:10000"),
        ("HTTP://LocalHost:10000", "http://localhost:10000"),
        ("https://Example.test", "https://example.test:443"),
        ("http://[::1]:10000/devstoreaccount1", "http://[::1]:10000"),
        ("ftp://127.0.0.1", None),
        ("http://user:pw@127.0.0.1:1", None),
        ("http://127.0.0.1:99999", None),
        ("http:///path", None),
    ],
)
def test_origin_is_scheme_host_and_explicit_port(url: str, expected: str | None) -> None:
    assert origin(url) == expected


def test_public_host_over_https_resolving_to_public_addresses_is_allowed() -> None:
    policy = _policy(table={PUBLIC_HOST: [PUBLIC_ADDRESS, "2603:1030::1"]})

    policy.check(f"https://{PUBLIC_HOST}")
    assert policy.addresses("https", PUBLIC_HOST, 443) == [PUBLIC_ADDRESS, "2603:1030::1"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.4",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # instance metadata (AWS, Azure IMDS, GCP)
        "168.63.129.16",  # Azure WireServer
        "100.100.100.200",  # Alibaba metadata, shared address space
        "0.0.0.0",
        "224.0.1.1",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "64:ff9b::a00:4",  # NAT64 of 10.0.0.4
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "not an address",
    ],
)
def test_public_host_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    policy = _policy(table={PUBLIC_HOST: [PUBLIC_ADDRESS, address]})

    with pytest.raises(InvalidDestination, match="not public") as raised:
        policy.check(f"https://{PUBLIC_HOST}/")

    assert raised.value.status == 400
    assert address not in raised.value.message


@pytest.mark.parametrize(
    "url",
    [
        f"http://{PUBLIC_HOST}",
        f"https://{PUBLIC_HOST}:8443",
        "https://127.0.0.1:10000/devstoreaccount1",
        "https://localhost",
        "https://169.254.169.254",
        "http://169.254.169.254/metadata",
        "https://[::1]:443",
        "https://storage.attacker.example",
        "https://contosolake.blob.core.windows.net.attacker.example",
        "https://user@contosolake.blob.core.windows.net",
        "ftp://contosolake.blob.core.windows.net",
    ],
)
def test_unlisted_endpoint_is_refused_without_resolving_it(url: str) -> None:
    asked: list[str] = []
    policy = _policy(table={PUBLIC_HOST: [PUBLIC_ADDRESS]}, asked=asked)

    with pytest.raises(InvalidDestination) as raised:
        policy.check(url)

    assert "not in the allowed storage endpoints" in raised.value.message
    assert asked == []


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ("http://127.0.0.1:10000", "http://127.0.0.1:10000/devstoreaccount1"),
        ("HTTP://127.0.0.1:10000/", "http://127.0.0.1:10000"),
        ("https://storage.internal.example", "https://storage.internal.example:443/acct"),
        ("http://[::1]:10000", "http://[::1]:10000/devstoreaccount1"),
        (f"https://{PUBLIC_HOST}", f"https://{PUBLIC_HOST}"),  # private endpoint in a VNet
    ],
)
def test_listed_origin_is_allowed_at_any_address(allowed: str, url: str) -> None:
    asked: list[str] = []
    policy = _policy([allowed], {PUBLIC_HOST: ["10.0.0.4"]}, asked=asked)

    policy.check(url)

    assert asked == [], "a listed origin is trusted as configured, not resolved at accept"


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ("http://127.0.0.1:10000", "https://127.0.0.1:10000"),
        ("http://127.0.0.1:10000", "http://127.0.0.1:10001"),
        ("http://127.0.0.1:10000", "http://localhost:10000"),
        ("not a url", "http://127.0.0.1:10000"),
    ],
)
def test_listing_is_by_exact_origin(allowed: str, url: str) -> None:
    with pytest.raises(InvalidDestination):
        _policy([allowed]).check(url)


def test_public_host_that_does_not_resolve_is_unreachable() -> None:
    for table in ({}, {PUBLIC_HOST: []}):
        with pytest.raises(DestinationUnreachable) as raised:
            _policy(table=table).check(f"https://{PUBLIC_HOST}")
        assert raised.value.status == 422


def _pool_manager(policy: EndpointPolicy) -> urllib3.PoolManager:
    manager = urllib3.PoolManager(retries=False, timeout=2)
    manager.pool_classes_by_scheme = guarded_pool_classes(policy)  # type: ignore[assignment]
    return manager


def test_guarded_connection_to_an_unlisted_loopback_port_never_connects() -> None:
    with counting_server() as server:
        manager = _pool_manager(_policy())
        for url in (f"http://127.0.0.1:{server.port}/", f"https://127.0.0.1:{server.port}/"):
            with pytest.raises(InvalidDestination, match="not in the allowed"):
                manager.request("GET", url)

    assert server.connections == []


def test_guarded_connection_to_a_listed_origin_connects() -> None:
    with counting_server() as server:
        manager = _pool_manager(_policy([f"http://127.0.0.1:{server.port}"]))
        with pytest.raises((MaxRetryError, ProtocolError)):
            manager.request("GET", f"http://127.0.0.1:{server.port}/")

    assert len(server.connections) == 1


def test_guarded_connection_checks_the_name_again_at_connect_and_pins_it() -> None:
    """A public name that resolved to a public address when accepted and to a loopback one
    at connection time (DNS rebinding) is refused before connecting."""
    answers: dict[str, Sequence[str]] = {PUBLIC_HOST: [PUBLIC_ADDRESS]}
    policy = _policy(table=answers)
    policy.check(f"https://{PUBLIC_HOST}")
    answers[PUBLIC_HOST] = ["127.0.0.1"]

    with pytest.raises(InvalidDestination, match="not public"):
        _pool_manager(policy).request("GET", f"https://{PUBLIC_HOST}/")


def test_guarded_connection_connects_to_the_checked_address_not_the_name() -> None:
    """A listed name connects to the address its resolver gave: the one checked."""
    with counting_server() as server:
        listed = f"http://storage.test:{server.port}"
        manager = _pool_manager(_policy([listed], {"storage.test": ["127.0.0.1"]}))
        with pytest.raises((MaxRetryError, ProtocolError)):
            manager.request("GET", f"{listed}/")

    assert len(server.connections) == 1


def test_resolver_default_is_looked_up_at_each_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """``endpoints.resolve`` is the seam: replacing it changes every policy without one."""
    from industrydata.lake import endpoints

    seen: list[str] = []
    fake: Callable[[str, int], Sequence[str]] = _resolver({PUBLIC_HOST: ["10.1.2.3"]}, seen)
    monkeypatch.setattr(endpoints, "resolve", fake)

    with pytest.raises(InvalidDestination, match="not public"):
        EndpointPolicy.from_allowed([]).check(f"https://{PUBLIC_HOST}")
    assert seen == [PUBLIC_HOST]


def test_guarded_connection_to_a_name_that_does_not_resolve_is_a_retryable_failure() -> None:
    """Unlike a refusal, a failed look-up may pass: the HTTP stack sees a connection error."""
    manager = _pool_manager(_policy(["http://storage.test:10000"]))

    with pytest.raises(NewConnectionError, match="does not resolve"):
        manager.request("GET", "http://storage.test:10000/")
