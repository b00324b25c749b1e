"""`python -m supervisor` is the same as the `mcp-supervisor` command."""

import sys

from supervisor._cli import main

sys.exit(main())
