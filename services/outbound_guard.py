"""Which URLs the platform may call on a partner's behalf (webhooks; DESIGN §9 "Outbound calls").

A partner chooses the URL, so a URL is a request to connect somewhere from inside our
network. This guard admits only http(s) URLs whose host is, and resolves only to, globally
reachable unicast addresses: never loopback, private, link-local, multicast, reserved,
unspecified, shared (CGNAT) or unique-local addresses, whichever way the host is spelled
(decimal, hex, octal or short IPv4 forms as `inet_aton` reads them, IPv4 inside IPv6, a
trailing dot, IDNA look-alikes, a DNS name that points inside).

`vet_url` resolves the host once and returns the address to connect to: the caller connects
to that address (and no other), so a DNS answer that changes between check and connect
cannot move the connection inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# host name -> the addresses it resolves to (textual); injected in tests, so that no test
# ever asks a real DNS server
Resolver = Callable[[str], Awaitable[list[str]]]

ALLOWED_SCHEMES = {"http": 80, "https": 443}
RESOLVE_TIMEOUT_SECONDS = 5.0

_PATH_SAFE = "!$%&'()*+,/:;=?@[]~"
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMBER = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")
# 64:ff9b::/96 (RFC 6052): a NAT64 gateway turns these into the IPv4 address they embed
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# ::/96 minus ::/127: deprecated IPv4-compatible IPv6 addresses (::a.b.c.d)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class DestinationNotAllowed(ValueError):
    """The URL may not be called: its form, or an address its host is or resolves to."""

    code = "webhook_url_not_allowed"


class DestinationUnresolvable(OSError):
    """The host name did not resolve (now: DNS may answer later)."""

    code = "webhook_url_unresolvable"


@dataclass(frozen=True)
class OutboundTarget:
    """A vetted URL: where to connect (`address`) and what to say (`host`, `target`)."""

    scheme: str
    # the host in ASCII (A-labels), no trailing dot: the Host header and the TLS server name
    host: str
    port: int
    # path and query, as they appeared in the URL
    target: str
    # the address the caller connects to, and the host's other vetted addresses, to try in
    # order if a connection cannot be made (never any address outside these)
    address: str
    alternatives: tuple[str, ...] = ()

    @property
    def host_header(self) -> str:
        """The Host header value (the port only when it is not the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if ALLOWED_SCHEMES[self.scheme] == self.port else f"{host}:{self.port}"


async def system_resolver(host: str) -> list[str]:
    """The addresses the operating system resolves `host` to."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def address_allowed(address: IPAddress) -> bool:
    """Whether `address` is a globally reachable unicast address (one outside our network)."""
    if isinstance(address, ipaddress.IPv6Address):
        # a zone names an interface of ours; fec0::/10 is the deprecated site-local range
        if address.scope_id or address.is_site_local:
            return False
        # IPv6 forms that carry an IPv4 address reach that address: judge it too
        if address.ipv4_mapped is not None:
            return address_allowed(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None and not address_allowed(embedded):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host spells, the way `inet_aton` and browsers read it
    (127.1, 2130706433, 0x7f000001, 0177.0.0.1), or None if the host is not numeric.

    Raises DestinationNotAllowed for a host that ends in a number but is no valid address:
    some resolver may still read it as one.
    """
    parts = host.split(".")
    if not _NUMBER.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMBER.match(part) for part in parts):
        raise DestinationNotAllowed(f"{host!r} is neither a host name nor an IPv4 address")
    numbers = [_parse_number(part) for part in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise DestinationNotAllowed(f"{host!r} is out of the IPv4 range")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not set(part) <= set("01234567"):
            raise DestinationNotAllowed(f"{part!r} is not an octal number")
        return int(part, 8)
    return int(part)


@dataclass(frozen=True)
class _ParsedURL:
    scheme: str
    host: str
    port: int
    target: str
    literal: IPAddress | None


def parse_url(url: str) -> _ParsedURL:
    """Split and normalize a URL, refusing what the guard cannot vouch for (a scheme other
    than http/https, userinfo, a malformed or zoned host)."""
    if any(ord(char) <= 0x20 or char in "\\\x7f" for char in url):
        raise DestinationNotAllowed("the URL contains whitespace, control characters or '\\'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DestinationNotAllowed(f"malformed URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise DestinationNotAllowed("only http and https URLs are allowed")
    if "@" in parts.netloc:
        raise DestinationNotAllowed("credentials (userinfo) in the URL are not allowed")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise DestinationNotAllowed("the URL has no host")
    # non-ASCII path characters travel percent-encoded (UTF-8); what is encoded stays as is
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), _PATH_SAFE)
    port = port if port is not None else ALLOWED_SCHEMES[scheme]
    if port == 0:
        raise DestinationNotAllowed("port 0 is not a destination")
    if parts.netloc.startswith("["):
        if "%" in raw_host:
            raise DestinationNotAllowed("IPv6 zone identifiers are not allowed")
        try:
            literal: IPAddress = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise DestinationNotAllowed(f"{raw_host!r} is not an IPv6 address") from None
        return _ParsedURL(scheme, literal.compressed, port, target, literal)
    host = _ascii_host(raw_host)
    number = parse_ipv4_number(host)
    if number is not None:
        return _ParsedURL(scheme, str(number), port, target, number)
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise DestinationNotAllowed(f"{raw_host!r} is not a valid host name")
    return _ParsedURL(scheme, host, port, target, None)


def _ascii_host(raw_host: str) -> str:
    """The host in lower-case ASCII (IDNA A-labels, look-alike characters mapped as a
    resolver would), without its trailing dot."""
    host = raw_host
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise DestinationNotAllowed(f"{raw_host!r} is not a valid host name: {error}") from None
    host = host.lower()
    # "localhost." is "localhost": DNS names are absolute either way
    return host[:-1] if host.endswith(".") else host


async def vet_url(
    url: str, *, allow_private: bool = False, resolver: Resolver = system_resolver
) -> OutboundTarget:
    """The target to connect to for `url`, or DestinationNotAllowed.

    The host is resolved once (DestinationUnresolvable if it does not resolve); every
    address it resolves to must be allowed (a mixed answer is refused, whichever address
    a client would pick); the caller connects to these addresses only, the first first.
    `allow_private` (dev and tests, whose receivers listen on loopback) admits every
    address, but not the other refusals.
    """
    parsed = parse_url(url)
    if parsed.literal is not None:
        addresses: list[IPAddress] = [parsed.literal]
    else:
        if not allow_private and (parsed.host == "localhost" or parsed.host.endswith(".localhost")):
            # RFC 6761: these names are loopback whatever a resolver says
            raise DestinationNotAllowed(f"{parsed.host} is a loopback name")
        addresses = await _resolve(parsed.host, resolver)
    if not allow_private:
        for address in addresses:
            if not address_allowed(address):
                raise DestinationNotAllowed(
                    f"{parsed.host} is or resolves to {address}, which is not a public address"
                )
    first, *others = dict.fromkeys(address.compressed for address in addresses)
    return OutboundTarget(
        parsed.scheme, parsed.host, parsed.port, parsed.target, first, tuple(others)
    )


async def _resolve(host: str, resolver: Resolver) -> list[IPAddress]:
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            answers = await resolver(host)
    except (OSError, TimeoutError) as error:
        raise DestinationUnresolvable(f"{host} does not resolve: {error}") from None
    if not answers:
        raise DestinationUnresolvable(f"{host} resolves to no address")
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            # a zoned link-local answer ("fe80::1%eth0") or garbage: never a public address
            raise DestinationNotAllowed(f"{host} resolves to {answer!r}") from None
    return addresses
