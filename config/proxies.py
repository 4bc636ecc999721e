"""The client's address behind load balancers, so that audit events and the sign-in throttle see the
people making requests rather than the proxy in front of Berth."""

import ipaddress

from django.conf import settings


def _recorded(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in `text` as Berth records it, or None when it records none (see canonical_address)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id or (address.packed[:12] == bytes(12) and address.packed[12:14] != bytes(2)):
            return None
    return address


def canonical_address(text: str) -> str | None:
    """`text` as PostgreSQL's inet prints it back, or None when it is no address Berth records. Audit
    events hash the address they store, so the two must agree: an IPv4-mapped IPv6 address is its
    IPv4 address; a scoped one (fe80::1%eth0) and the deprecated IPv4-compatible form (::1.2.3.4),
    which Python and PostgreSQL print differently, are not recorded."""
    address = _recorded(text)
    return None if address is None else str(address)


def client_network(text: str) -> str:
    """What a per-client limit should count: an IPv4 address, or an IPv6 address's /64. One
    subscriber is usually given a whole /64, so counting its addresses one by one would give them
    2^64 fresh allowances. Text that is no address counts as itself."""
    address = _recorded(text)
    if address is None:
        return text
    if address.version == 4:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def _host(entry: str) -> str:
    """Some proxies write the port too: 198.51.100.7:51234, [2001:db8::7]:51234."""
    entry = entry.strip()
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    return entry.partition(":")[0] if entry.count(":") == 1 else entry


def forwarded_client(remote_addr: str, header: str, proxies) -> str | None:
    """The client's address when the request came from a trusted proxy: walking X-Forwarded-For from
    the right (each proxy appends the address it received from), the first entry that is no trusted
    proxy. None when REMOTE_ADDR is no trusted proxy (the header is then the client's own claim), an
    entry is malformed (nothing left of it can be trusted), or every entry is a proxy."""
    def is_proxy(address) -> bool:
        return any(address in network for network in proxies)

    remote = _recorded(remote_addr)
    if remote is None or not is_proxy(remote):
        return None
    for entry in reversed(header.split(",")) if header else ():
        address = _recorded(_host(entry))
        if address is None:
            return None
        if not is_proxy(address):
            return str(address)
    return None


class TrustedProxyMiddleware:
    """REMOTE_ADDR becomes the client's address as the trusted proxies (BERTH_TRUSTED_PROXIES)
    recorded it; without trusted proxies X-Forwarded-For is ignored."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        proxies = settings.BERTH_TRUSTED_PROXIES
        if proxies:
            client = forwarded_client(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""),
                                      proxies)
            if client is not None:
                request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
