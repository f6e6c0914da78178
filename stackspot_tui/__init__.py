"""stackspot-tui: a terminal chat client for StackSpot AI quick commands."""

import sys

__version__ = "0.1.0"

# httpx imports its own command-line client (click, rich, pygments: ~0.2 s of every start-up)
# whenever those happen to be installed, and this program never uses it. A None entry makes
# that import fail at once; httpx then defines a stand-in `httpx.main` and nothing else changes.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
