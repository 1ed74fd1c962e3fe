"""Offline replay and what-if of a domain's decisions, in simulated time (``epum replay``).

``trace`` is the recorded trace and its file format; ``run`` replays one
with any engine and config on the simulator (``epum.sim``) and compares
what happened with what the replay did; ``cli`` is the command line and
the optional plot.
"""
