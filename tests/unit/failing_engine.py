"""An engine that fails at every decision, to show failures stay in their domain."""

from epum.engines.base import Engine


class FailingEngine(Engine):
    """Raises from decide()."""

    def initialize(self, control, state, conf):
        self.conf = conf

    def decide(self, control, state):
        raise RuntimeError("this engine always fails")
