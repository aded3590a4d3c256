"""Camera URLs given to the API (`source_url`) are fetched by the server, so they are checked the
way a server-side fetch must be: the scheme is rtsp, rtsps, http or https; every address the host
resolves to must be public (not loopback, link-local, private, multicast, reserved or
unspecified) unless the allow-list names it (FACEGATE_SOURCE_URL_ALLOW: networks such as
192.168.10.0/24, or host names); and an http(s) URL's redirects are followed here, each hop
checked again, so the stream reader is handed only the final, checked URL.

What this cannot close: the stream reader (FFmpeg) resolves the host again when it connects, so
a DNS answer that changes between the check and the connection (rebinding) is not caught."""

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

from facegate.errors import CameraUnavailableError, FacegateError

SCHEMES = ("rtsp", "rtsps", "http", "https")
MAX_REDIRECTS = 5


class SourceUrlRefused(FacegateError):
    """The URL's scheme or address is not one the server may fetch."""

    code = "source_url_refused"


def without_credentials(url: str) -> str:
    """The URL as it may be shown in a message or a log: any user name and password replaced by
    '***' (a Redis or database URL often carries a password)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return parts._replace(netloc=f"***@{host}").geturl()


def _networks(allow: list[str]) -> tuple[list, set[str]]:
    networks, hosts = [], set()
    for entry in allow:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower())
    return networks, hosts


def _refused_kind(address: ipaddress._BaseAddress) -> str | None:
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "non-public"
    return None


def check_source_url(url: str, allow: list[str], resolve=socket.getaddrinfo) -> None:
    """Refuse `url` (SourceUrlRefused) unless its scheme is a stream's and every address its
    host resolves to is public or allowed."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise SourceUrlRefused(
            f"source_url must be rtsp://, rtsps://, http:// or https://, not {parts.scheme!r}"
        )
    host = parts.hostname
    if not host:
        raise SourceUrlRefused("source_url names no host")
    networks, hosts = _networks(allow)
    if host.lower() in hosts:
        return
    try:
        port = parts.port
    except ValueError:
        raise SourceUrlRefused("source_url has an invalid port") from None
    try:
        found = resolve(host, port or 0, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise SourceUrlRefused(f"source_url's host {host!r} does not resolve") from None
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if getattr(address, "ipv4_mapped", None):
            address = address.ipv4_mapped
        if any(address in network for network in networks):
            continue
        kind = _refused_kind(address)
        if kind:
            raise SourceUrlRefused(
                f"source_url's host {host!r} resolves to a {kind} address ({address}); "
                "name it in FACEGATE_SOURCE_URL_ALLOW to allow it"
            )


def checked_source_url(url: str, allow: list[str], timeout_s: float = 10.0) -> str:
    """`url` checked; for http(s), its redirects followed and each hop checked: the final URL."""
    import httpx

    check_source_url(url, allow)
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return url
    for _ in range(MAX_REDIRECTS):
        try:
            with httpx.stream("GET", url, follow_redirects=False, timeout=timeout_s) as response:
                if not response.is_redirect:
                    return url
                target = response.headers.get("location", "")
        except httpx.HTTPError as error:
            raise CameraUnavailableError(
                f"the stream at source_url cannot be reached ({type(error).__name__})"
            ) from None
        url = urljoin(url, target)
        check_source_url(url, allow)
    raise SourceUrlRefused(f"source_url redirects more than {MAX_REDIRECTS} times")
