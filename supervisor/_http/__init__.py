"""The HTTP layer: every request from the ASGI scope to the actor and back.

Health, the front (Host checks, auth, the server's own routes), the endpoint and its routes
(session, stateless, quick open, forwarding), the exchange with the SDK transport, and the admin
app. Every refusal a client can get is built in `_refusals.py`. The serving layer above imports
from here only.
"""

from supervisor._http._access import AccessLog
from supervisor._http._admin import AdminFront, read_admin_token, token_digest
from supervisor._http._auth import StaticTokenVerifier, TokensFileError, open_to_others
from supervisor._http._endpoint import SupervisorEndpoint
from supervisor._http._front import build_front
from supervisor._http._proxy import ForwardedHeaders, RootPath, security_for, trusted_peers
from supervisor._http._refusals import unknown_path
from supervisor._http._tracing import HttpTracing

__all__ = [
    "AccessLog",
    "AdminFront",
    "ForwardedHeaders",
    "HttpTracing",
    "RootPath",
    "StaticTokenVerifier",
    "SupervisorEndpoint",
    "TokensFileError",
    "build_front",
    "open_to_others",
    "read_admin_token",
    "security_for",
    "token_digest",
    "trusted_peers",
    "unknown_path",
]
