"""``epumctl domain wait``: done once the domain holds exactly N RUNNING instances and
nothing else live; a timeout past ``--for``; not found for a domain that is gone."""

from __future__ import annotations

import io

import pytest

from epum.ctl import ctl_parser, exit_code
from epum.errors import NotFoundError


class Domains:
    """describe_domain answers, one per call (the last one repeats)."""

    def __init__(self, *states: list[str] | None):
        self.answers = list(states)

    def describe_domain(self, domain_id, caller=None):
        states = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if states is None:
            return None
        return {"instances": [{"instance_id": f"i{n}", "state": s} for n, s in enumerate(states)]}


def wait(client, *flags: str) -> tuple[int, str]:
    args = ctl_parser().parse_args(["domain", "wait", "pool", *flags, "--interval", "0.001"])
    out = io.StringIO()
    return args.print_lines(client, args, out), out.getvalue()


def test_it_returns_once_exactly_n_are_running_and_nothing_else_lives():
    client = Domains(
        ["200-REQUESTED", "600-RUNNING"],
        ["600-RUNNING", "600-RUNNING", "400-PENDING"],
        ["600-RUNNING", "600-RUNNING", "800-TERMINATED"],
    )
    assert wait(client, "--running", "2") == (0, "domain pool: 2 running\n")
    assert client.answers == [["600-RUNNING", "600-RUNNING", "800-TERMINATED"]]


def test_it_times_out_with_the_timeout_exit_code():
    with pytest.raises(TimeoutError, match="1 of 2 live instances running") as caught:
        wait(Domains(["600-RUNNING", "400-PENDING"]), "--running", "2", "--for", "0.01")
    assert exit_code(caught.value) == 6


def test_a_domain_that_is_gone_is_not_found():
    with pytest.raises(NotFoundError):
        wait(Domains(None), "--running", "1")
