"""epum's settings: one tree of grouped, frozen dataclasses, each setting declared once.

``Settings`` is the root; its sections are ``AmqpSettings`` (``server.amqp``),
``ZooKeeperSettings`` (``server.zookeeper``), ``EPUMSettings``
(``epumanagement``), ``LimitSettings`` (``limits``) and ``StatsdSettings``
(``statsd``).  Every field carries its default and, in its metadata, the
reason for it (``why``), plus the range or choice check its type alone does
not express.

The tree is built in one of two ways, with the same checks:

- ``epum.config.load_config`` reads YAML files and ``EPUM_*`` overrides and
  calls ``settings_from_dict`` on the merged mapping (the file's shape);
- the facade's ``initial_conf`` (PROTOCOL.md section 1) goes through
  ``settings_from_initial_conf``, which moves each key to its place in the
  tree by the one table ``INITIAL_CONF_KEYS``.

A bad value raises ``ConfigError`` naming the key as the caller spelled it.
An unknown key is not fatal: it lands in ``Settings.warnings`` naming the
nearest known key, for whoever built the tree to log once.
"""

from epum.settings.build import (
    build_section,
    settings_from_dict,
    settings_from_initial_conf,
    to_initial_conf,
)
from epum.settings.checks import setting
from epum.settings.limits import LimitSettings
from epum.settings.original import IGNORED_ORIGINAL_KEYS
from epum.settings.sensors import SensorSettings
from epum.settings.tree import (
    INITIAL_CONF_KEYS,
    AmqpSettings,
    EPUMSettings,
    Settings,
    StatsdSettings,
    ZooKeeperSettings,
    default_worker_name,
)

__all__ = [
    "IGNORED_ORIGINAL_KEYS",
    "INITIAL_CONF_KEYS",
    "AmqpSettings",
    "EPUMSettings",
    "LimitSettings",
    "SensorSettings",
    "Settings",
    "StatsdSettings",
    "ZooKeeperSettings",
    "build_section",
    "default_worker_name",
    "setting",
    "settings_from_dict",
    "settings_from_initial_conf",
    "to_initial_conf",
]
