"""Putting it together: `open_supervisor` builds the supervisor, its cluster part and its app;
`serve_supervisor` serves them with hypercorn in trio mode. The public face and the command line
import from here only.
"""

from supervisor._serve._open import StoreRequired, admin_app, open_supervisor, supervisor_app
from supervisor._serve._serving import hypercorn_config, serve_supervisor, wait_for_signal

__all__ = [
    "StoreRequired",
    "admin_app",
    "hypercorn_config",
    "open_supervisor",
    "serve_supervisor",
    "supervisor_app",
    "wait_for_signal",
]
