"""The address of the client behind the clinic's own proxies (nginx, perhaps a CDN)."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The address our outermost proxy was connected from.

    Each proxy appends the address of its peer to X-Forwarded-For, so with N proxies in
    front of the app the client is the Nth entry from the right; whatever stands left of
    it was written by the client and counts for nothing. With no proxy, or a request that
    did not come through them all, the socket's address is what we know.

    django-ipware is not used for this: its proxy count is the number of proxy addresses
    *inside* the header (one nginx puts none there), so with a count of one it answers
    None for every honest client, one address shared by all, and the forged entry for a
    client that sends its own header; with a count of zero and its default strictness a
    forged entry sends the client to the proxy's own address, shared by all again.
    """
    remote = request.META.get("REMOTE_ADDR")
    count = settings.TRUSTED_PROXY_COUNT
    if not count:
        return remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(hops) < count:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-count].strip()))
    except ValueError:
        return remote
