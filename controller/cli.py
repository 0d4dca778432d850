"""``foresight-controller``: run the controller, or check a config file.

    foresight-controller run CONFIG [--openflow-port N] [--grpc-port N] [--metrics-port N]
    foresight-controller check CONFIG

``check`` exits 0 and prints a summary when CONFIG is valid, else exits 1 naming
the bad key. ``run`` stops cleanly on SIGTERM or SIGINT: os-ken's native-hub
threads are not daemons and would keep the process alive, so the runner closes
the apps itself and exits within a bounded time.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from controller import config as config_mod

LOG = logging.getLogger("foresight.controller")

SHUTDOWN_BUDGET_S = 1.5


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="foresight-controller", description="Foresight SDN controller")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the controller")
    run.add_argument("config", nargs="?", help="YAML config (defaults apply when omitted)")
    run.add_argument("--openflow-port", type=int, help="override controller.openflow.port")
    run.add_argument("--grpc-port", type=int, help="override controller.grpc.port")
    run.add_argument("--metrics-port", type=int, help="override controller.metrics.port")
    check = sub.add_parser("check", help="validate a config file and exit")
    check.add_argument("config")
    return ap


def _with_overrides(cfg: config_mod.Config, args) -> config_mod.Config:
    data = cfg.model_dump()
    ctl = data["controller"]
    if args.openflow_port is not None:
        ctl["openflow"]["port"] = args.openflow_port
    if args.grpc_port is not None:
        ctl["grpc"]["port"] = args.grpc_port
    if args.metrics_port is not None:
        ctl["metrics"]["port"] = args.metrics_port
    try:
        return config_mod.model().model_validate(data)
    except Exception as err:  # noqa: BLE001 - reported as a config error
        raise config_mod.ConfigError(f"command-line override: {err}") from None


def check(path: str) -> int:
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as err:
        print(f"invalid: {err}", file=sys.stderr)
        return 1
    ctl = cfg.controller
    print(f"ok: {path}: OpenFlow {ctl.openflow.listen_host}:{ctl.openflow.port}, "
          f"gRPC {ctl.grpc.listen_host}:{ctl.grpc.port}, "
          f"metrics {ctl.metrics.listen_host}:{ctl.metrics.port}, "
          f"{len(cfg.topology.switches)} switches and {len(cfg.topology.links)} links in metadata")
    return 0


def run(cfg: config_mod.Config) -> int:
    logging.basicConfig(level=cfg.controller.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from controller.state import StateError, StateStore
    if cfg.controller.state.path:
        try:
            StateStore(cfg.controller.state.path).close()
        except StateError as err:
            print(f"cannot start: {err}", file=sys.stderr)
            return 1
    # os-ken registers its options on import; app_manager must come before controller.
    from os_ken import cfg as osken_cfg
    from os_ken.base import app_manager
    from os_ken.controller import controller as _osken_controller  # noqa: F401 - registers options

    from controller import app as app_mod
    from controller.desired import ProviderError, load_factory
    try:
        for path in cfg.controller.providers:
            load_factory(path)
    except ProviderError as err:
        print(f"cannot start: {err}", file=sys.stderr)
        return 1

    of = cfg.controller.openflow
    osken_cfg.CONF(args=["--ofp-listen-host", of.listen_host, "--ofp-tcp-listen-port", str(of.port)],
                   project="os_ken", default_config_files=[])
    osken_cfg.CONF.set_override("echo_request_interval", of.echo_interval_s)
    osken_cfg.CONF.set_override("maximum_unreplied_echo_requests", of.echo_max_missed)
    app_mod.configure(cfg)

    stop = threading.Event()

    def _on_signal(signum, _frame):
        LOG.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    manager = app_manager.AppManager.get_instance()
    manager.load_apps(["os_ken.controller.ofp_handler", "controller.app"])
    contexts = manager.create_contexts()
    manager.instantiate_apps(**contexts)
    LOG.info("controller running: OpenFlow %s:%d", of.listen_host, of.port)
    while not stop.wait(0.5):
        pass
    closer = threading.Thread(target=manager.close, daemon=True)
    closer.start()
    closer.join(SHUTDOWN_BUDGET_S)
    if closer.is_alive():
        LOG.warning("apps did not close within %.1f s; exiting anyway", SHUTDOWN_BUDGET_S)
    logging.shutdown()
    # Native-hub threads (socket loops) are not daemons; leave without joining them.
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return check(args.config)
    try:
        cfg = config_mod.load(args.config) if args.config else config_mod.Config()
        cfg = _with_overrides(cfg, args)
    except config_mod.ConfigError as err:
        print(f"invalid: {err}", file=sys.stderr)
        return 1
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
