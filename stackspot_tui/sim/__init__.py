"""StackSpot simulator: in-process (`Simulator.transport()`) or on loopback (`stackspot-tui simulate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy

if TYPE_CHECKING:  # what mypy sees; at run time each name is imported on first use
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

# Lightest first: the catalogue and the fault lists load neither httpx nor asyncio.
__getattr__ = lazy.exports(__name__, __all__, ("catalogue", "quick", "agents", "core", "server"))
