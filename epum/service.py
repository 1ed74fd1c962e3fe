"""The epum worker: settings -> logging -> store -> clients -> facade -> RPC server.

``Worker(settings).start()`` builds everything, initializes the facade and
loads the configured initial definitions and domains; ``serve()`` answers
RPC requests until ``stop()``; ``close()`` shuts the facade down (leaving
the elections) and closes the broker connections.  ``run_worker`` does all
of it with SIGTERM/SIGINT wired to ``stop()``.

With ``server.http.port`` set, the worker serves ``/healthz`` (the consumer
loop is running), ``/readyz`` (consuming from the broker, connected to
ZooKeeper when that is the store, initial state loaded) and Prometheus
``/metrics`` on ``server.http.host`` from the start of ``start()`` to
``close()``; ``telemetry`` (a ``WorkerMetrics``) holds the metrics either way.
"""

from __future__ import annotations

import copy
import logging
import logging.config
import os
import signal
import threading
from typing import Any

from epum.errors import WriteConflictError
from epum.http_endpoint import HttpEndpoint
from epum.messaging import (
    Dispatcher,
    DTRSClient,
    EPUMOperations,
    Names,
    OpMetrics,
    OUAgentClient,
    ProvisionerClient,
    RpcClient,
    RpcServer,
    SubscriberNotifier,
    connection_from_settings,
    mask_url,
)
from epum.messaging.callers import CallerPolicy
from epum.messaging.connection import broker_url
from epum.messaging.queue_probe import amqp_queue_probe
from epum.messaging.retry import RetryPolicy
from epum.redact import install_redaction, secrets_of
from epum.sensor_wiring import sensor_credentials
from epum.settings import Settings
from epum.store import get_epum_store
from epum.telemetry import (
    CountingProvisioner,
    OpObserver,
    StateProbe,
    StatsdObserver,
    WorkerMetrics,
)

log = logging.getLogger(__name__)

#: The console log used when the config has no ``logging`` section.
DEFAULT_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"log_context": {"()": "epum.logcontext.LogContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)-7s %(name)s "
            "[%(request_id)s %(op)s %(caller)s %(domain)s] %(message)s"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
            "filters": ["log_context"],
        }
    },
    "loggers": {"kombu": {"level": "WARNING"}, "amqp": {"level": "WARNING"}},
    "root": {"level": "INFO", "handlers": ["console"]},
}


def prepare_logging(section: dict[str, Any]) -> dict[str, Any]:
    """A copy of a ``logging`` section ready for ``dictConfig``, as the original services
    made theirs ready: every file handler's directory is created (``logs/logfile.txt``
    of the original's service.yml works from any working directory).

    Two more things make the original's section mean what it meant there:
    ``disable_existing_loggers`` defaults to false (epum's module loggers exist
    before the config is applied, and the original's section names only the
    ``epu`` and ``dashi`` loggers), and the ``epu`` logger's settings also apply
    to ``epum`` when the section does not configure ``epum`` itself.
    """
    out = copy.deepcopy(section)
    out.setdefault("disable_existing_loggers", False)
    loggers = out.get("loggers")
    if isinstance(loggers, dict) and "epu" in loggers and "epum" not in loggers:
        loggers["epum"] = copy.deepcopy(loggers["epu"])
    handlers = out.get("handlers")
    for handler in handlers.values() if isinstance(handlers, dict) else ():
        filename = handler.get("filename") if isinstance(handler, dict) else None
        if isinstance(filename, str) and os.path.dirname(filename):
            os.makedirs(os.path.dirname(filename), exist_ok=True)
    return out


def configure_logging(config: Settings) -> None:
    """Apply the settings' ``logging`` section (``prepare_logging``; or the default), then
    ``log_level``; then log the config's warnings (unknown and ignored keys), once.
    Every handler then masks the configured secrets (``epum.redact``)."""
    logging.config.dictConfig(prepare_logging(config.logging or DEFAULT_LOGGING))
    install_redaction(secrets_of(config))
    if config.log_level:
        logging.getLogger().setLevel(config.log_level)
    for warning in config.warnings:
        log.warning("config: %s", warning)


class Worker:
    """One epum worker process's parts, built from the settings tree.

    The tree is passed down whole: the facade takes it as its ``initial_conf``
    (so its unknown-key warnings, already logged, are not logged again).
    """

    def __init__(self, config: Settings, facade_factory: Any = None):
        self.config = config
        self._facade_factory = facade_factory
        self._stop = threading.Event()
        self.rpc: RpcClient | None = None
        self.facade: Any = None
        self.server: RpcServer | None = None
        self.store: Any = None
        self.telemetry = WorkerMetrics()
        self.http: HttpEndpoint | None = None
        self._serving = threading.Event()
        self._loaded = threading.Event()

    def start(self) -> None:
        """Build the store, clients, facade and server; initialize; load initial state."""
        cfg = self.config
        if cfg.http.port is not None:
            self.http = HttpEndpoint(
                cfg.http.host,
                cfg.http.port,
                self.health_checks(),
                self.readiness_checks(),
                self.telemetry.registry,
            )
            self.http.start()
        names = Names(cfg.amqp.sysname, cfg.amqp.exchange)
        service = cfg.epum.service_name
        log.info(
            "worker %s starting: service %s on %s (sysname %s), %s store",
            cfg.worker_name,
            service,
            mask_url(broker_url(cfg.amqp)),
            cfg.amqp.sysname or "-",
            cfg.epum.persistence_type,
        )
        self.rpc = RpcClient(
            connection_from_settings(cfg.amqp, name=f"{cfg.worker_name}:client", heartbeat=False),
            names,
            sender=service,
            timeout=cfg.amqp.rpc_timeout,
            dashi_replies=True,  # the original's services answer only to the header
        )
        store = self.store = get_epum_store(cfg)
        store.initialize()
        factory = self._facade_factory or _epum_management()
        self.facade = factory(
            cfg,
            SubscriberNotifier(self.rpc),
            CountingProvisioner(
                self.telemetry, ProvisionerClient(self.rpc, cfg.epum.provisioner_service_name)
            ),
            OUAgentClient(self.rpc),
            # bounded: add_domain checks sites while holding the consumer
            DTRSClient(self.rpc, cfg.epum.dtrs_service_name, timeout=cfg.amqp.dtrs_timeout),
            store=store,
            statsd_cfg=cfg.statsd,
            sensor_credentials=sensor_credentials(
                cfg.sensors,
                amqp_queue_probe(broker_url(cfg.amqp), connect_timeout=cfg.sensors.query_timeout),
            ),
        )
        if hasattr(self.facade, "statsd"):  # the decider reports its passes through it
            self.facade.statsd = StatsdObserver(self.telemetry, self.facade.statsd)
        self.facade.initialize()
        self.telemetry.observe_state(self._state_probe())
        self.load_initial_state()
        self._loaded.set()
        ops = EPUMOperations(self.facade, cfg.epum.default_user)
        self.server = RpcServer(
            connection_from_settings(cfg.amqp, name=f"{cfg.worker_name}:server"),
            names,
            service,
            Dispatcher(ops.table()),
            prefetch=cfg.amqp.prefetch,
            shards=cfg.amqp.queue_shards,
            handlers=cfg.amqp.handlers,
            metrics=OpObserver(self.telemetry, OpMetrics.from_config(cfg.statsd)),
            retry=RetryPolicy.from_settings(cfg.amqp),
            callers=CallerPolicy.from_settings(cfg.amqp),
            limits=cfg.limits,
        )

    def health_checks(self) -> dict[str, Any]:
        """``/healthz``: the process answers and its consumer loop runs."""
        return {"consumer": self._serving.is_set}

    def readiness_checks(self) -> dict[str, Any]:
        """``/readyz``: consuming from the broker, ZooKeeper connected (when it is the
        store), the initial state loaded."""
        checks: dict[str, Any] = {
            "broker": lambda: self.server is not None and self.server.ready.is_set(),
            "initial_state": self._loaded.is_set,
        }
        if self.config.epum.persistence_type == "zookeeper":
            checks["zookeeper"] = self._zookeeper_connected
        return checks

    def _zookeeper_connected(self) -> bool:
        client = getattr(self.store, "kazoo_client", None)
        return client is not None and bool(client.connected)

    def _state_probe(self) -> StateProbe:
        store, facade = self.store, self.facade

        def instances() -> list[tuple[str, str]]:
            return [
                (inst.state, inst.health)
                for domain in store.get_all_domains()
                for inst in domain.get_instances()
            ]

        def leading(role: str) -> bool:
            # the decider role: any of the worker's deciders (one per share)
            loops = getattr(facade, "deciders", []) if role == "decider" else []
            loops = loops or [getattr(facade, role, None)]
            return any(getattr(loop, "is_leader", False) for loop in loops)

        zookeeper = self.config.epum.persistence_type == "zookeeper"
        return StateProbe(
            domains=lambda: len(store.get_all_domains()),
            instances=instances,
            leading=leading,
            zookeeper_connected=self._zookeeper_connected if zookeeper else None,
        )

    def load_initial_state(self) -> None:
        """Add the configured definitions, then domains; existing ones are kept, bad ones
        are logged and skipped."""
        epum = self.config.epum
        for def_id, definition in epum.initial_definitions.items():
            try:
                self.facade.msg_add_domain_definition(def_id, definition)
                log.info("loaded initial definition %s", def_id)
            except WriteConflictError:
                log.info("initial definition %s already exists; kept", def_id)
            except Exception:
                log.exception("initial definition %s could not be loaded; skipped", def_id)
        for dom_id, entry in epum.initial_domains.items():
            owner = entry.get("caller") or epum.default_user
            if not owner:
                log.error("initial domain %s names no caller and there is no default_user", dom_id)
                continue
            try:
                self.facade.msg_add_domain(
                    owner, dom_id, entry["definition"], entry.get("config") or {}
                )
                log.info("loaded initial domain %s of %s", dom_id, owner)
            except WriteConflictError:
                log.info("initial domain %s of %s already exists; kept", dom_id, owner)
            except Exception:
                log.exception("initial domain %s could not be loaded; skipped", dom_id)

    def serve(self) -> None:
        """Answer requests until ``stop()`` (returns after the message in hand)."""
        assert self.server is not None, "start() first"
        if not self._stop.is_set():
            self._serving.set()
            try:
                self.server.run()
            finally:
                self._serving.clear()

    def stop(self) -> None:
        """Stop taking messages; safe from a signal handler or another thread."""
        self._stop.set()
        if self.server is not None:
            self.server.stop()

    def close(self) -> None:
        """Shut the facade down (leaves the elections) and close broker connections."""
        if self.facade is not None:
            try:
                self.facade.shutdown()
            except Exception:
                log.exception("facade shutdown failed")
        if self.server is not None:
            self.server.connection.release()
            self.server.metrics.close()
        if self.rpc is not None:
            self.rpc.close()
        if self.http is not None:
            self.http.stop()
        log.info("worker %s stopped", self.config.worker_name)


def _epum_management() -> Any:
    from epum.management import EPUManagement

    return EPUManagement


class _Interrupted(Exception):
    """A stop signal arrived while the worker was not consuming (starting, reconnecting)."""


def run_worker(config: Settings) -> int:
    """Run a worker until SIGTERM/SIGINT; 0 on a clean stop.

    While consuming, a signal stops the intake and lets the message in hand
    finish; while starting or waiting for the broker, it interrupts at once.
    Either way the facade is shut down and the connections closed.
    """
    configure_logging(config)
    worker = Worker(config)
    closing = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        worker.stop()
        consuming = worker.server is not None and worker.server.ready.is_set()
        if not consuming and not closing.is_set():
            raise _Interrupted()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.start()
        worker.serve()
    except _Interrupted:
        log.info("stopped before serving")
    finally:
        closing.set()
        worker.close()
    return 0
