"""Simulated provisioner and instance agents that speak EPUM's protocol.

For the demo (``python -m epum.sim.demo``), tests and benchmarks:
``SimProvisioner`` (the provisioner and its cloud), ``SimAgents`` (the
agents on running instances), ``Simulation`` (an EPUM wired to both on a
simulated clock).  Nothing here sleeps: time is always given.
"""

from epum.sim.agents import SimAgents, agent_address
from epum.sim.cloud import Delays, SimProvisioner
from epum.sim.stubs import SimClock, SimDTRS, SimNotifier

__all__ = [
    "Delays",
    "SimAgents",
    "SimClock",
    "SimDTRS",
    "SimNotifier",
    "SimProvisioner",
    "agent_address",
]
