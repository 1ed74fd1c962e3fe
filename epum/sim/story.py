"""The names the demo's story is told with, on the in-memory store
(``epum.sim.demo``) and on real servers (``epum.sim.demo_servers``) alike."""

#: Whose domain it is.
OWNER = "demo-user"
#: The domain the demo keeps at size.
DOMAIN = "workers"
#: The definition the domain is made from.
DEFINITION = "sim-workers"
