"""StackSpot simulator: in-process (`Simulator.transport()`) or on loopback (`stackspot-tui simulate`)."""

from .catalogue import CATALOGUE, quick_commands
from .core import FAULT_SLUGS, SimResponse, Simulator, ulid
from .server import SimulatorServer, serve_forever

__all__ = [
    "CATALOGUE",
    "FAULT_SLUGS",
    "SimResponse",
    "Simulator",
    "SimulatorServer",
    "quick_commands",
    "serve_forever",
    "ulid",
]
