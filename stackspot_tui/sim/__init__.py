"""StackSpot simulator: in-process (`Simulator.transport()`) or on loopback (`stackspot-tui simulate`)."""

from .agents import AGENT_FAULTS, AGENTS, Pacing, agents_listing
from .catalogue import CATALOGUE, quick_commands
from .core import FAULT_SLUGS, SimResponse, Simulator, ulid
from .quick import FAULTS, OBJECT_INPUTS, PROGRESS_MODES
from .server import SimulatorServer, serve_forever

__all__ = [
    "AGENTS",
    "AGENT_FAULTS",
    "CATALOGUE",
    "FAULTS",
    "FAULT_SLUGS",
    "OBJECT_INPUTS",
    "PROGRESS_MODES",
    "Pacing",
    "SimResponse",
    "Simulator",
    "SimulatorServer",
    "agents_listing",
    "quick_commands",
    "serve_forever",
    "ulid",
]
