"""stackspot-tui: a terminal chat client for StackSpot AI quick commands."""

__version__ = "0.1.0"
