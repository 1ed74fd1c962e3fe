"""``limits``: the bounds on what a client may send and on what one decider pass does.

Every limit has a default safe for a small deployment and the reason for it.
A request past a limit is refused with a ``BadRequestError`` naming the
limit (``limits.<name>``), before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from epum.settings.checks import Checked, positive, setting


@dataclass(frozen=True)
class LimitSettings(Checked):
    """``limits``: sizes, counts and rates that keep one client from hurting the others."""

    max_message_bytes: int = setting(
        262_144,
        why="a request is a few KB; 256 KB leaves room for a large config and stays far "
        "below what could stall the consumer",
        check=positive,
    )
    max_depth: int = setting(
        32,
        why="epum's own documents nest four levels; 32 is generous and far below Python's "
        "recursion limit",
        check=positive,
    )
    max_name_length: int = setting(
        256,
        why="ids, names and operation names are short; a znode name must stay small",
        check=positive,
    )
    max_string_length: int = setting(
        16_384, why="one string value (an error text, a var): 16 KB is plenty", check=positive
    )
    max_record_bytes: int = setting(
        32_768,
        why="an instance record is under 2 KB; this bounds one record's store write",
        check=positive,
    )
    max_config_bytes: int = setting(
        131_072,
        why="a domain config or definition (sites, uniques, vars) fits easily; this bounds "
        "one config's store write",
        check=positive,
    )
    max_instances_per_domain: int = setting(
        10_000,
        why="a domain of 10,000 is decided in bounded steps; a larger size is a typo",
        check=positive,
    )
    max_domains_per_caller: int = setting(
        1_000, why="one owner's domains must not fill the store", check=positive
    )
    max_definitions: int = setting(
        1_000,
        why="definitions are templates; a thousand is more than any deployment has",
        check=positive,
    )
    max_launches_per_pass: int = setting(
        50,
        why="a domain scaling up far gets 50 launches a pass, so one pass stays short and "
        "other domains are decided in time",
        check=positive,
    )
    max_launches_per_second: float = setting(
        200.0,
        why="all domains together: the provisioner and the store get a bounded stream of "
        "launches (a burst of one second's worth)",
        check=positive,
    )
