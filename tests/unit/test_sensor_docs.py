"""Every sensor source's keys are documented where users look for them: the
config doc of each engine that scales on a metric, and the README's
configuration reference."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from epum.engines.multisite import MultiSiteOverflowEngine
from epum.engines.sensor import SensorEngine
from epum.sensors import SENSOR_TYPES, sensor_config_doc
from epum.settings import SensorSettings

README = Path(__file__).resolve().parents[2] / "README.md"

#: A documented key starts a line of a config doc: "name (" or "name, other (".
KEY_LINE = re.compile(r"^([a-z_]+)(?:, ([a-z_]+))? \(", re.M)


def source_keys() -> set[str]:
    """The keys every source's part of the config doc names, and the error policy's."""
    keys = {k for match in KEY_LINE.findall(sensor_config_doc()) for k in match if k}
    assert {"prometheus_url", "rabbitmq_queue", "opentsdb_tag", "sensor_data"} <= keys
    return keys | {"sensor_error_policy", "fallback_size"}


def readme_section() -> str:
    text = README.read_text()
    return text.split("### Sensor sources", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize(
    "engine", [SensorEngine, MultiSiteOverflowEngine], ids=lambda e: e.__name__
)
def test_each_scaling_engine_documents_every_source_key(engine):
    doc = engine.get_config_doc()
    missing = sorted(k for k in source_keys() if k not in doc)
    assert not missing, f"{engine.__name__}.get_config_doc() lacks {missing}"
    assert doc.count("prometheus_url (") == 1  # once, not once per way in


def test_the_readme_lists_every_source_and_its_keys():
    section = readme_section()
    missing = sorted(k for k in source_keys() if f"`{k}`" not in section)
    assert not missing, f"the README's sensor sources section lacks {missing}"
    rows = set(re.findall(r"^\| `([a-z]+)`", section, re.M))
    assert set(SENSOR_TYPES) <= rows, f"no table row for {sorted(set(SENSOR_TYPES) - rows)}"


def test_the_readme_lists_every_worker_sensor_setting():
    section = readme_section()
    missing = [f.name for f in dataclasses.fields(SensorSettings) if f"`{f.name}`" not in section]
    assert not missing, f"the README's server.sensors table lacks {missing}"
