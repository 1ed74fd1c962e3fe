"""The demo's live screen: the domain's instances as a table redrawn in place, the
timeline's latest lines below it.

``LiveScreen`` is a simulation observer (called after every step of a
tick); it renders a frame from the timeline and writes it only when it
changed, after ``pace`` real seconds since the last frame so a person can
follow (tests pass 0).  ``frame`` is a pure function of what it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from epum.sim.timeline import Timeline, short_state

#: Moves the cursor home and clears the screen below it (ANSI).
HOME_AND_CLEAR = "\x1b[H\x1b[J"


def frame(title: str, timeline: Timeline, rows: int, width: int) -> str:
    """One screen: ``title``, a table of every instance seen, then as many of the
    timeline's latest lines as fit in ``rows`` (at least 5), each cut to ``width``."""
    table = [("NAME", "INSTANCE", "STATE", "HEALTH", "ADDRESS")]
    table += [
        (s.name, s.instance_id[:8], short_state(s.state), s.health, s.public_ip or "-")
        for s in timeline.instances.values()
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [title, ""]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    room = max(5, rows - len(lines) - 3)
    lines += ["", "Timeline:", *timeline.lines[-room:]]
    return "\n".join(line[:width].rstrip() for line in lines) + "\n"


class LiveScreen:
    """Redraws ``frame`` on ``stream`` whenever it changes (see the module doc)."""

    def __init__(
        self,
        timeline: Timeline,
        stream: TextIO,
        title: str,
        size: Callable[[], tuple[int, int]],
        pace: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.timeline = timeline
        self.stream = stream
        self.title = title
        self.size = size
        self.pace = pace
        self.sleep = sleep
        self.frames = 0
        self._last = ""

    def __call__(self, now: float) -> None:
        """Observe one step: redraw if the screen would change."""
        self.draw()

    def draw(self) -> None:
        """Write the current frame if it differs from the last one written."""
        width, rows = self.size()
        text = frame(self.title, self.timeline, rows, width)
        if text == self._last:
            return
        if self.pace and self.frames:
            self.sleep(self.pace)
        self._last = text
        self.frames += 1
        self.stream.write(HOME_AND_CLEAR + text)
        self.stream.flush()
