"""Who is at the other end of a connection: the client's address and scheme, behind trusted proxies only.

Behind a reverse proxy every request comes from the proxy's address, so the lockout after failed
sign-ins would lock out everyone at once and cookies could never be `Secure`. `X-Forwarded-For`
and `X-Forwarded-Proto` are believed only from a peer named with `--trusted-proxy`: from anyone
else they are text a client wrote, and a client could pick its own address to dodge the lockout.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from tornado import httputil

from dashboard.config import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The networks whose forwarding headers are believed; none by default."""

    def __init__(self, proxies: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(_network(p) for p in proxies)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == n.version and ip in n for n in self.networks)

    def client(self, request: httputil.HTTPServerRequest) -> str:
        """The client's address: the peer's, or through trusted proxies the right-most untrusted hop."""
        peer = request.remote_ip or ""
        if not self.networks or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in ",".join(request.headers.get_list("X-Forwarded-For")).split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                try:
                    return str(ipaddress.ip_address(hop.strip("[]")))
                except ValueError:
                    return peer  # garbage a client wrote before the proxy appended: not an address to key on
        return hops[0] if hops else peer

    def is_https(self, request: httputil.HTTPServerRequest) -> bool:
        """Whether the client's request came over HTTPS: directly, or as a trusted proxy says."""
        if request.protocol == "https":
            return True
        if not self.networks or not self.trusts(request.remote_ip or ""):
            return False
        proto = ",".join(request.headers.get_list("X-Forwarded-Proto"))
        # Proxies that append list one scheme per hop: the last was written by the trusted peer itself.
        return proto.split(",")[-1].strip().lower() == "https"


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip().strip("[]"), strict=False)
    except ValueError:
        raise ConfigError(
            f"--trusted-proxy {text!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8, ::1)"
        ) from None
