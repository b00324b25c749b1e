"""What a store URL says beyond where Redis is: how to check its TLS, and how to print it.

A `rediss://` store is verified as any TLS client verifies a server by default: its certificate
must chain to a trusted CA (the system's, or `ssl_ca_certs`) and name the host dialled. The query
parameters change that, each by name: `ssl_ca_certs=PATH` (a CA file or directory),
`ssl_certfile=PATH` and `ssl_keyfile=PATH` (a client certificate), `ssl_cert_reqs=required|
optional|none`, `ssl_check_hostname=true|false`.

A URL is never printed with its credentials: `redacted` drops the user info and every password
parameter, for log lines and error messages alike.

In the sentinel mode the URL may name several sentinels, comma-separated
(`redis://h1:26379,h2:26379,h3:26379/0`): the node asks them in turn, so one sentinel down does
not keep it from finding the primary (`hosts_of`).
"""

from __future__ import annotations

import os
import ssl
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SECRET_PARAMETERS = {"password", "pass", "pwd", "token", "secret", "auth"}
SENTINEL_PORT = 26379


def lists_hosts(url: str) -> bool:
    """Whether the URL's authority names more than one host (comma-separated)."""
    return "," in urlsplit(url).netloc.rpartition("@")[2]


def hosts_of(url: str, default_port: int) -> list[tuple[str, int]]:
    """The (host, port) pairs the URL's authority names, comma-separated, the user info left out
    (`[v6::addr]:port` for IPv6); ValueError, naming the bad entry, for an empty host or a bad port."""
    hosts = []
    for entry in urlsplit(url).netloc.rpartition("@")[2].split(","):
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest.removeprefix(":")
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
        else:
            host, port = entry, ""
        number = int(port) if port.isdigit() else default_port if not port else 0
        if not host or not 0 < number < 65536:
            raise ValueError(f"redis_url names a host as {entry!r}: give host:port, comma-separated")
        hosts.append((host, number))
    return hosts


def tls_context(url: str) -> ssl.SSLContext | None:
    """The TLS context for a `rediss://` URL (None for other schemes); ValueError for a bad parameter."""
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return None
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    ca_certs = query.get("ssl_ca_certs")
    if ca_certs is None:
        context = ssl.create_default_context()
    elif os.path.isdir(ca_certs):
        context = ssl.create_default_context(capath=ca_certs)
    else:
        context = ssl.create_default_context(cafile=ca_certs)
    certfile, keyfile = query.get("ssl_certfile"), query.get("ssl_keyfile")
    if certfile is not None:
        context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    check_hostname = query.get("ssl_check_hostname", "true").lower()
    if check_hostname not in _TRUE | _FALSE:
        raise ValueError(f"--redis-url: ssl_check_hostname must be true or false, got {check_hostname!r}")
    cert_reqs = query.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _CERT_REQS:
        raise ValueError(f"--redis-url: ssl_cert_reqs must be required, optional or none, got {cert_reqs!r}")
    # Host name checking needs a certificate to check: turn it off first when none is required.
    context.check_hostname = check_hostname in _TRUE and cert_reqs != "none"
    context.verify_mode = _CERT_REQS[cert_reqs]
    return context


def redacted(url: str) -> str:
    """The URL without user info or password parameters: safe for a log line or an error."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a URL that could not be read>"
    host = parts.netloc.rpartition("@")[2]
    query = [
        (name, "***" if name.lower() in _SECRET_PARAMETERS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*/"), ""))
