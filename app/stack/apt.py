"""Debian packages the local stack and the test run need, installed with ``apt-get`` when a
program is missing and we run as root (``redis-server``; Chromium and its driver for the
console's browser tests). Elsewhere the caller says what to install instead."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence

from app.stack.errors import StackError, StackPrerequisiteMissing

log = logging.getLogger(__name__)

APT_TIMEOUT_S = 600.0
"""How long one ``apt-get`` call may take, seconds."""


def _apt_get(apt: str, hint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(
            [apt, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=APT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"`apt-get {' '.join(args)}` took more than {APT_TIMEOUT_S:.0f} s; {hint}."
        ) from exc


def find_or_install(programs: Sequence[str], packages: Sequence[str], hint: str) -> list[str]:
    """The paths of ``programs`` on PATH; when one is missing and we are root on a system with
    ``apt-get``, installs ``packages`` first (``apt-get update`` and a retry if the first
    install fails).

    Raises :class:`StackPrerequisiteMissing` (with ``hint``: what to install) when it cannot.
    """
    found = [shutil.which(p) for p in programs]
    if all(found):
        return [str(f) for f in found]
    missing = ", ".join(p for p, f in zip(programs, found, strict=True) if f is None)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise StackPrerequisiteMissing(f"{missing} not found on PATH: {hint}.")
    install = ("install", "-y", "--no-install-recommends", *packages)
    log.info("%s not found on PATH; installing %s with apt-get...", missing, " ".join(packages))
    result = _apt_get(apt, hint, *install)
    if result.returncode != 0:
        log.info("apt-get install failed; running apt-get update and retrying...")
        _apt_get(apt, hint, "update")
        result = _apt_get(apt, hint, *install)
    found = [shutil.which(p) for p in programs]
    if result.returncode != 0 or not all(found):
        output = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise StackPrerequisiteMissing(
            f"{missing} not found on PATH and `apt-get install {' '.join(packages)}` failed "
            f"(exit {result.returncode}): {hint}. Last lines of apt-get:\n{output}"
        )
    log.info("installed %s", ", ".join(str(f) for f in found))
    return [str(f) for f in found]
