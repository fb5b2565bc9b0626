"""The outbound guard: which webhook URLs may be called (DESIGN §9 "Outbound calls").

No test here connects anywhere or asks a real DNS server: host names resolve through a fake
resolver, and a name it does not know fails the test.
"""

from __future__ import annotations

import ipaddress

import pytest

from services.outbound_guard import (
    DestinationNotAllowed,
    DestinationUnresolvable,
    OutboundTarget,
    address_allowed,
    parse_ipv4_number,
    vet_url,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

FAKE_DNS = {
    "hooks.partner.example": [PUBLIC_V4, PUBLIC_V6],
    "loopback.partner.example": ["127.0.0.1"],
    "private.partner.example": ["10.1.2.3"],
    "metadata.partner.example": ["169.254.169.254"],
    "ula.partner.example": ["fd12:3456:789a::1"],
    "mapped.partner.example": ["::ffff:127.0.0.1"],
    # one public and one inside: a client may pick either
    "mixed.partner.example": [PUBLIC_V4, "192.168.1.10"],
    "zoned.partner.example": ["fe80::1%eth0"],
    "xn--bcher-kva.example": [PUBLIC_V4],
}


async def fake_resolver(host: str) -> list[str]:
    if host == "nxdomain.partner.example":
        raise OSError("Name or service not known")
    if host not in FAKE_DNS:
        raise AssertionError(f"the guard resolved {host!r}, which no test expects")
    return FAKE_DNS[host]


async def vet(url: str, *, allow_private: bool = False) -> OutboundTarget:
    return await vet_url(url, allow_private=allow_private, resolver=fake_resolver)


# the eight loopback spellings the SSRF report found accepted, then more of the same
LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:8000/hooks",
    "http://localhost:8000/hooks",
    "http://127.1:8000/hooks",
    "http://2130706433:8000/hooks",
    "http://0x7f000001:8000/hooks",
    "http://[::ffff:127.0.0.1]:8000/hooks",
    "http://localhost.:8000/hooks",
    "http://loopback.partner.example:8000/hooks",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://127.0.1/",
    "http://127.000.000.001/",
    "http://127.255.255.254/",
    "http://LOCALHOST/",
    "http://api.localhost/",
    "http://ⓛocalhost/",
    # fullwidth digits, which IDNA mapping turns into 127.0.0.1
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    "HTTPS://127.0.0.1/",
    "http://loopback.partner.example./",
]

INSIDE_URLS = [
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd00::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[ff0e::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://private.partner.example/",
    "http://metadata.partner.example/",
    "http://ula.partner.example/",
    "http://mapped.partner.example/",
    "http://mixed.partner.example/",
    "http://zoned.partner.example/",
    "http://[fe80::1%25eth0]/",
]

MALFORMED_URLS = [
    "ftp://hooks.partner.example/",
    "file:///etc/passwd",
    "gopher://hooks.partner.example/",
    "http://user:pass@hooks.partner.example/",
    "http://user@hooks.partner.example/",
    "http://hooks.partner.example@127.0.0.1/",
    "http://hooks.partner.example\\@127.0.0.1/",
    "http:///hooks",
    "http://hooks.partner.example:99999/",
    "http://hooks.partner.example:0/",
    "http://1.2.3.256/",
    "http://1.2.3.4.5/",
    "http://0x1g.0.0.1/",
    "http://09.0.0.1/",
    "http://4294967296/",
    "http://hooks partner.example/",
    "http://hooks.partner.example/\r\nX-Injected: 1",
    "http://bad_label-.example/",
    "http://[not-an-address]/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
async def test_no_spelling_of_loopback_is_allowed(url: str) -> None:
    with pytest.raises(DestinationNotAllowed):
        await vet(url)


@pytest.mark.parametrize("url", INSIDE_URLS)
async def test_private_link_local_multicast_and_reserved_addresses_are_refused(url: str) -> None:
    with pytest.raises(DestinationNotAllowed):
        await vet(url)


@pytest.mark.parametrize("url", MALFORMED_URLS)
async def test_other_schemes_userinfo_and_malformed_hosts_are_refused(url: str) -> None:
    with pytest.raises(DestinationNotAllowed):
        await vet(url)


@pytest.mark.parametrize("url", MALFORMED_URLS[:6])
async def test_allowing_private_networks_does_not_allow_other_schemes_or_userinfo(
    url: str,
) -> None:
    with pytest.raises(DestinationNotAllowed):
        await vet(url, allow_private=True)


async def test_a_public_name_is_allowed_and_pinned_to_its_vetted_addresses() -> None:
    target = await vet("https://Hooks.Partner.Example./v1/events?tenant=7")
    assert target == OutboundTarget(
        scheme="https",
        host="hooks.partner.example",
        port=443,
        target="/v1/events?tenant=7",
        address=PUBLIC_V4,
        alternatives=(PUBLIC_V6,),
    )
    assert target.host_header == "hooks.partner.example"


@pytest.mark.parametrize(
    ("url", "address", "host_header"),
    [
        (f"http://{PUBLIC_V4}/", PUBLIC_V4, PUBLIC_V4),
        (f"http://{PUBLIC_V4}:8080/", PUBLIC_V4, f"{PUBLIC_V4}:8080"),
        (f"https://[{PUBLIC_V6}]/", PUBLIC_V6, f"[{PUBLIC_V6}]"),
        ("http://1572394766/", PUBLIC_V4, PUBLIC_V4),  # decimal spelling of a public address
        ("http://[::ffff:93.184.215.14]/", "::ffff:5db8:d70e", "[::ffff:5db8:d70e]"),
        ("http://8.8.8.8/", "8.8.8.8", "8.8.8.8"),
    ],
)
async def test_public_addresses_are_allowed_in_any_spelling(
    url: str, address: str, host_header: str
) -> None:
    target = await vet(url)
    assert (target.address, target.host_header) == (address, host_header)


async def test_idna_names_are_resolved_by_their_a_label() -> None:
    target = await vet("https://Bücher.example/ü")
    assert (target.host, target.address, target.target) == (
        "xn--bcher-kva.example",
        PUBLIC_V4,
        "/%C3%BC",
    )


async def test_private_networks_allowed_admits_loopback_for_dev_and_tests() -> None:
    target = await vet("http://127.0.0.1:8123/hooks", allow_private=True)
    assert (target.address, target.host_header) == ("127.0.0.1", "127.0.0.1:8123")
    assert (await vet("http://loopback.partner.example/", allow_private=True)).address == (
        "127.0.0.1"
    )


async def test_a_name_that_does_not_resolve_is_unresolvable_not_allowed() -> None:
    with pytest.raises(DestinationUnresolvable):
        await vet("https://nxdomain.partner.example/")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7F.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104 (parsed, never bound)
        ("0x", "0.0.0.0"),  # noqa: S104 (parsed, never bound)
        ("10.0x10.010.1", "10.16.8.1"),
        ("255.255.255.255", "255.255.255.255"),
    ],
)
def test_numeric_hosts_are_read_as_inet_aton_reads_them(host: str, address: str) -> None:
    assert parse_ipv4_number(host) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize("host", ["example.com", "1.example", "a1", "xn--bcher-kva.example"])
def test_names_are_not_numbers(host: str) -> None:
    assert parse_ipv4_number(host) is None


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", PUBLIC_V4, PUBLIC_V6, "2001:4860:4860::8888", "::ffff:8.8.8.8"],
)
def test_global_unicast_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address))
