"""A domain's sites are checked with the DTRS before anything is stored."""

from __future__ import annotations

import logging
import threading

import pytest

from epum.errors import BadRequestError, NotFoundError
from epum.sites import KEPT_ANSWERS, QUESTIONS_AT_ONCE, CachedDTRS
from tests.fakes import FakeDTRS
from tests.unit.scenario import Scenario

MULTISITE = {
    "general": {"engine_class": "multisite"},
    "engine_conf": {
        "domain_desired_size": 2,
        "dtname": "dt",
        "clouds": [
            {"site_name": "site1", "size": 1, "rank": 1},
            {"site_name": "elsewhere", "size": 1, "rank": 2},
        ],
    },
}


@pytest.fixture
def checked():
    dtrs = FakeDTRS(sites={"site1", "site2"}, credentials={("alice", "site1"), ("alice", "site2")})
    scenario = Scenario(dtrs=dtrs)
    yield scenario
    scenario.epum.shutdown()


def test_a_known_site_with_credentials_is_accepted(checked):
    checked.add_domain("alice", "dom", 1, engine_conf={"force_site": "site1"})
    checked.decide()
    assert checked.provisioner.provisioned[0]["site"] == "site1"


def test_an_unknown_site_is_refused_and_nothing_stored(checked):
    with pytest.raises(BadRequestError, match="'nowhere' is not known to the DTRS"):
        checked.add_domain("alice", "dom", 1, engine_conf={"force_site": "nowhere"})
    assert checked.epum.msg_list_domains("alice") == []


def test_a_site_without_the_callers_credentials_is_refused(checked):
    with pytest.raises(BadRequestError, match="bob has no credentials for site 'site1'"):
        checked.add_domain("bob", "dom", 1, engine_conf={"force_site": "site1"})
    assert checked.epum.msg_list_domains("bob") == []


def test_every_cloud_of_a_multisite_domain_is_checked(checked):
    checked.epum.msg_add_domain_definition("multi", MULTISITE)
    with pytest.raises(BadRequestError, match="'elsewhere'"):
        checked.epum.msg_add_domain("alice", "dom", "multi", {})
    assert checked.epum.store.get_domain("alice", "dom") is None


def test_reconfiguring_to_an_unknown_site_changes_nothing(checked):
    checked.add_domain("alice", "dom", 1, engine_conf={"force_site": "site1"})
    with pytest.raises(BadRequestError, match="'nowhere'"):
        checked.epum.msg_reconfigure_domain(
            "alice", "dom", {"engine_conf": {"force_site": "nowhere"}}
        )
    config = checked.epum.msg_describe_domain("alice", "dom")["config"]
    assert config["engine_conf"]["force_site"] == "site1"


def test_an_unreachable_dtrs_does_not_block_domains(caplog):
    sc = Scenario(dtrs=FakeDTRS(fail=ConnectionError("dtrs is down")))
    try:
        with caplog.at_level(logging.WARNING, logger="epum.sites"):
            sc.add_domain("alice", "dom", 1, engine_conf={"force_site": "site9"})
        assert sc.epum.msg_list_domains("alice") == ["dom"]
        assert "could not check site site9" in caplog.text
    finally:
        sc.epum.shutdown()


def test_the_service_default_site_of_a_needy_domain_is_checked():
    sc = Scenario({"needy_default_iaas_site": "gone"}, dtrs=FakeDTRS(sites={"site1"}))
    try:
        sc.epum.msg_add_domain_definition("needy", {"general": {"engine_class": "needy"}})
        with pytest.raises(BadRequestError, match="'gone'"):
            sc.epum.msg_add_domain(
                "alice", "dom", "needy", {"engine_conf": {"preserve_n": 1, "deployable_type": "dt"}}
            )
        sc.epum.msg_add_domain(
            "alice",
            "dom",
            "needy",
            {"engine_conf": {"preserve_n": 1, "iaas_site": "site1", "deployable_type": "dt"}},
        )
        assert sc.epum.msg_list_domains("alice") == ["dom"]
    finally:
        sc.epum.shutdown()


class CountingDTRS(FakeDTRS):
    """A FakeDTRS that counts what it is asked."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.asked: list[tuple] = []

    @property
    def calls(self) -> int:
        return len(self.asked)

    def describe_site(self, site_name):
        self.asked.append(("site", site_name))
        return super().describe_site(site_name)

    def describe_credentials(self, caller, site_name):
        self.asked.append(("credentials", caller, site_name))
        return super().describe_credentials(caller, site_name)


def test_a_dtrs_that_does_not_answer_lets_the_domain_in_and_is_logged(caplog):
    sc = Scenario(dtrs=CountingDTRS(fail=TimeoutError("no reply within 2 s")))
    try:
        sc.epum.msg_add_domain_definition("multi", MULTISITE)
        with caplog.at_level(logging.WARNING, logger="epum.sites"):
            sc.epum.msg_add_domain("alice", "dom", "multi", {})
        assert sc.epum.msg_list_domains("alice") == ["dom"]
        assert "could not check site site1" in caplog.text
    finally:
        sc.epum.shutdown()


class MeetingDTRS(FakeDTRS):
    """A FakeDTRS that answers only once ``parties`` questions wait at the same time
    (each waits up to 10 s, then fails as a DTRS that does not answer)."""

    def __init__(self, parties: int, **kwargs):
        super().__init__(**kwargs)
        self.meeting = threading.Barrier(parties, timeout=10)

    def describe_site(self, site_name):
        self.meeting.wait()
        return super().describe_site(site_name)

    def describe_credentials(self, caller, site_name):
        self.meeting.wait()
        return super().describe_credentials(caller, site_name)


def test_every_question_about_a_domains_sites_is_asked_at_once(caplog):
    # asked one after another, the first would wait alone, fail, and let the domain in
    dtrs = MeetingDTRS(4, sites={"site1"}, credentials={("alice", "site1")})
    sc = Scenario(dtrs=dtrs)
    try:
        sc.epum.msg_add_domain_definition("multi", MULTISITE)
        with pytest.raises(BadRequestError, match="'elsewhere' is not known to the DTRS"):
            sc.epum.msg_add_domain("alice", "dom", "multi", {})
        assert sc.epum.msg_list_domains("alice") == []
        assert "could not check" not in caplog.text
    finally:
        sc.epum.shutdown()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_kept_answers_spare_the_dtrs_until_they_expire():
    dtrs, clock = CountingDTRS(), Clock()
    cached = CachedDTRS(dtrs, 5.0, clock)
    assert cached.describe_site("s1") == {"name": "s1"}
    assert cached.describe_credentials("alice", "s1")["access_key"] == "k"
    clock.now += 4.9
    cached.describe_site("s1")
    cached.describe_credentials("alice", "s1")
    assert len(dtrs.asked) == 2
    cached.describe_credentials("bob", "s1")  # another caller's are asked for
    clock.now += 0.1
    cached.describe_site("s1")
    assert dtrs.asked[2:] == [("credentials", "bob", "s1"), ("site", "s1")]


def test_refusals_errors_and_none_are_never_kept():
    dtrs = CountingDTRS(sites={"s1"})
    cached = CachedDTRS(dtrs, 60.0, Clock())
    for _ in range(2):
        with pytest.raises(NotFoundError):
            cached.describe_site("nowhere")
    dtrs.fail = TimeoutError("slow")
    for _ in range(2):
        with pytest.raises(TimeoutError):
            cached.describe_site("s1")
    dtrs.fail = None
    dtrs.describe_site = lambda site_name: dtrs.asked.append(("none",))
    cached.describe_site("s1")
    cached.describe_site("s1")
    assert len(dtrs.asked) == 6


def test_a_cache_time_of_zero_keeps_nothing():
    dtrs = CountingDTRS()
    cached = CachedDTRS(dtrs, 0, Clock())
    cached.describe_site("s1")
    cached.describe_site("s1")
    assert len(dtrs.asked) == 2


@pytest.mark.parametrize("seconds", [-1, "5", None, True])
def test_a_bad_cache_time_is_refused(seconds):
    with pytest.raises(ValueError, match="DTRS cache time"):
        CachedDTRS(FakeDTRS(), seconds)


def test_the_cache_is_bounded():
    dtrs = CountingDTRS()
    cached = CachedDTRS(dtrs, 60.0, Clock())
    for i in range(KEPT_ANSWERS + 5):
        cached.describe_site(f"s{i}")
    assert len(cached._kept) <= KEPT_ANSWERS


def test_domains_added_in_a_burst_ask_the_dtrs_once_per_site_and_caller():
    dtrs = CountingDTRS(sites={"site1"}, credentials={("alice", "site1"), ("bob", "site1")})
    scenario = Scenario(dtrs=dtrs)
    try:
        for i in range(3):
            scenario.add_domain("alice", f"dom{i}", 1, engine_conf={"force_site": "site1"})
        scenario.add_domain("bob", "dom", 1, engine_conf={"force_site": "site1"})
        assert dtrs.asked == [
            ("site", "site1"),
            ("credentials", "alice", "site1"),
            ("credentials", "bob", "site1"),
        ]
    finally:
        scenario.epum.shutdown()


def test_the_dtrs_cache_time_is_a_setting():
    dtrs = CountingDTRS()
    scenario = Scenario(conf={"dtrs_cache_seconds": 0}, dtrs=dtrs)
    try:
        for i in range(2):
            scenario.add_domain("alice", f"dom{i}", 1, engine_conf={"force_site": "site1"})
        assert len(dtrs.asked) == 4
    finally:
        scenario.epum.shutdown()


class CrowdedDTRS(FakeDTRS):
    """A FakeDTRS that notes the most questions it was asked at the same time."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self.now = self.most = 0

    def _asked(self, answer):
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            threading.Event().wait(0.01)  # long enough for the others to be asked meanwhile
            return answer()
        finally:
            with self._lock:
                self.now -= 1

    def describe_site(self, site_name):
        return self._asked(lambda: super(CrowdedDTRS, self).describe_site(site_name))

    def describe_credentials(self, caller, site_name):
        return self._asked(lambda: super(CrowdedDTRS, self).describe_credentials(caller, site_name))


def test_a_domain_of_many_sites_has_a_bounded_number_of_questions_in_flight():
    clouds = [{"site_name": f"s{n}", "size": 1, "rank": n + 1} for n in range(30)]
    multisite = {**MULTISITE, "engine_conf": {**MULTISITE["engine_conf"], "clouds": clouds}}
    dtrs = CrowdedDTRS(sites={f"s{n}" for n in range(29)})  # the last one is unknown
    sc = Scenario(dtrs=dtrs)
    try:
        sc.epum.msg_add_domain_definition("many", multisite)
        with pytest.raises(BadRequestError, match="'s29' is not known"):
            sc.epum.msg_add_domain("alice", "dom", "many", {})
        assert 2 <= dtrs.most <= QUESTIONS_AT_ONCE
    finally:
        sc.epum.shutdown()
