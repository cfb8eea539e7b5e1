"""The ``nbo`` command: the tools of :mod:`app.cli`, and ``nbo worker``, the stream worker.

This is the console script's entry point (``python -m agents.cli`` runs it too): the worker
is built from :mod:`agents`, which the tools below it never import.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from app import cli
from app.settings import Settings


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    # Scoring multiplies small matrices per batch: BLAS threads only contend with the event
    # loop (measured here: 2.4x slower batches with OpenBLAS's default threads on 2 cores).
    # Set before numpy is first imported; an explicit setting in the environment wins.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from agents.app import run_worker

    run_worker(settings, loglevel=args.loglevel)
    return 0


def add_worker_command(sub: Any) -> None:
    """``nbo worker``."""
    worker = cli.add_command(
        sub,
        "worker",
        "run the stream worker until SIGTERM",
        "Consume behaviour events, update preference vectors in Redis and publish next-best"
        "\noffers; serves offer lookups, /healthz, /readyz and /metrics on NBO_WEB_PORT. Run"
        "\nseveral to share the partitions of the events topic.",
        "NBO_KAFKA_BOOTSTRAP=127.0.0.1:19092 NBO_REDIS_URL=redis://127.0.0.1:16379/0 nbo worker",
    )
    worker.add_argument(
        "--loglevel", default="info", choices=["crit", "error", "warn", "info", "debug"]
    )
    worker.set_defaults(handler=_worker)


def _configure_logging(settings: Settings, level: str) -> None:
    """The process's logging for a server command (``nbo api``, ``nbo console``)."""
    import logging
    import logging.config

    from app.logs import logging_config

    config = logging_config(settings.log_format, level.upper())
    if config is not None:
        logging.config.dictConfig(config)
    else:
        logging.getLogger().setLevel(level.upper())


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from agents.api import run_api

    _configure_logging(settings, args.loglevel)
    run_api(settings)
    return 0


def add_api_command(sub: Any) -> None:
    """``nbo api``."""
    api = cli.add_command(
        sub,
        "api",
        "serve the person lookups for channel services",
        "Serve GET /users/<id>/offers, /profile and /decisions on NBO_API_PORT to clients with"
        "\na bearer token of the right scope (nbo token create), plus /healthz, /readyz and"
        "\n/metrics. A process apart from the workers: a flood of lookups cannot slow the"
        "\nevent stream down.",
        "NBO_API_TOKENS_FILE=tokens NBO_REDIS_URL=redis://127.0.0.1:16379/0 nbo api",
    )
    api.add_argument(
        "--loglevel", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    api.set_defaults(handler=_api)


def _console(args: argparse.Namespace, settings: Settings) -> int:
    from agents.console.app import run_console

    _configure_logging(settings, args.loglevel)
    run_console(settings)
    return 0


def add_console_command(sub: Any) -> None:
    """``nbo console``."""
    console = cli.add_command(
        sub,
        "console",
        "serve the read-only operator web console",
        "Serve the operator console on NBO_CONSOLE_PORT: log in once with a token of scope"
        "\nconsole (nbo token create NAME --scopes console); pages so far: Lift (holdout"
        "\nagainst personalised, from the workers' metrics) and Policy (the policy in force"
        "\nand the score weights). It reads and never writes user data.",
        "NBO_API_TOKENS_FILE=tokens nbo console",
    )
    console.add_argument(
        "--loglevel", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    console.set_defaults(handler=_console)


EXTENSIONS = (add_worker_command, add_api_command, add_console_command)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``nbo`` parser (for tests and ``--help`` docs)."""
    return cli.build_parser(EXTENSIONS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbo`` console script; returns the process exit code."""
    return cli.main(argv, EXTENSIONS)


if __name__ == "__main__":
    raise SystemExit(main())
