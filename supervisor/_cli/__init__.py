"""The command line and the operator's tools: `mcp-supervisor serve`, `sessions`/`close`/`kill`
(the operator CLI), `haproxy-config`, and the one-line errors they give. It sits on top of the
public face (`supervisor`) and the serving layer.
"""

from supervisor._cli._commands import main

__all__ = ["main"]
