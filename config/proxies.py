"""The client's address behind load balancers, so that audit events and the sign-in throttle see the
people making requests rather than the proxy in front of Berth."""

import ipaddress

from django.conf import settings


def forwarded_client(header: str, hops: int) -> str | None:
    """The address the outermost of `hops` trusted proxies received the request from: each appends
    the address it saw to X-Forwarded-For, so it is the `hops`-th entry from the right. Entries left
    of it are whatever the client sent. None when there are fewer entries (the request did not come
    through every proxy) or that one is not an IP address."""
    entries = [entry.strip() for entry in header.split(",")] if header else []
    if hops < 1 or len(entries) < hops:
        return None
    try:
        return str(ipaddress.ip_address(entries[-hops]))
    except ValueError:
        return None


class TrustedProxyMiddleware:
    """With BERTH_TRUSTED_PROXIES = N, REMOTE_ADDR becomes the client's address as the N proxies in
    front of Berth recorded it; with 0 (Berth faces its clients) X-Forwarded-For is ignored."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        client = forwarded_client(request.META.get("HTTP_X_FORWARDED_FOR", ""), settings.BERTH_TRUSTED_PROXIES)
        if client is not None:
            request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
