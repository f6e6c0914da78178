"""StackSpot simulator: in-process (httpx transport) or on loopback (`stackspot-tui simulate`)."""

from .catalogue import CATALOGUE, quick_commands
from .core import FAULT_SLUGS, SimResponse, Simulator, ulid

__all__ = ["CATALOGUE", "FAULT_SLUGS", "SimResponse", "Simulator", "quick_commands", "ulid"]
