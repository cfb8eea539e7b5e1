"""``scripts/check-prereqs.sh``: `make test` / `make demo` say in one line what is missing.

Each test puts stand-in tools (small shell scripts printing a version) first on PATH, so the
script sees a machine of the versions under test; the real tools stay behind them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-prereqs.sh"


def fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def machine(
    tmp_path: Path, *, java: str = "17.0.15", go: str = "1.26.8", browser: bool = True
) -> Path:
    """A bin directory with stand-ins of the given versions (python3, mvn, redis-server and,
    with ``browser``, chromium and chromedriver current), whose PATH holds nothing else but the
    basic shell tools (no apt-get: nothing can be installed for the user)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake(bin_dir, "java", f"echo 'openjdk version \"{java}\" 2025-04-15' >&2")
    fake(bin_dir, "go", f'[ "$1 $2" = "env GOVERSION" ] && echo go{go}')
    fake(bin_dir, "mvn", "echo 'Apache Maven 3.9.9'")
    fake(bin_dir, "redis-server", "echo 'Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc'")
    if browser:
        fake(bin_dir, "chromium", "echo 'Chromium 156.0.8078.114'")
        fake(bin_dir, "chromedriver", "echo 'ChromeDriver 156.0.8078.114'")
    # the shell tools the script uses, and nothing else
    for tool in ("sed", "sort", "head", "id", "printf"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bin_dir / tool)
    return bin_dir


def run(bin_dir: Path, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    import sys

    environ = {"PATH": str(bin_dir), "PYTHON": sys.executable, **env}
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), target],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_machine_with_every_tool_at_the_stated_version_passes_silently(tmp_path: Path) -> None:
    proc = run(machine(tmp_path), "test")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_an_old_java_is_named_with_its_version_and_how_to_get_a_new_one(tmp_path: Path) -> None:
    proc = run(machine(tmp_path, java="11.0.2"), "test")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "make test: Java 17+ is needed but 11.0.2 was found: install a JDK 17+ "
        "(Debian: apt-get install openjdk-17-jre-headless) for the local Kafka broker"
    ]


def test_a_missing_browser_is_named_for_test_when_it_cannot_be_installed(tmp_path: Path) -> None:
    proc = run(machine(tmp_path, browser=False), "test")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "make test: chromium and chromedriver are needed for the console's browser tests: "
        "install Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver); as root they are installed for you"
    ]
    demo = tmp_path / "demo"
    demo.mkdir()
    assert run(machine(demo, browser=False), "demo").returncode == 0


def test_the_readme_go_version_is_the_one_checked(tmp_path: Path) -> None:
    proc = run(machine(tmp_path, go="1.22.5"), "test")
    assert proc.returncode == 1
    assert "make test: Go 1.26+ is needed but 1.22.5 was found" in proc.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = ("| Python | 3.11+", "| Java | 17+ |", "| `redis-server` | 6.2+ |", "| Go | 1.26+ |")
    for row in rows:
        assert row in readme


def test_the_demo_does_not_need_go(tmp_path: Path) -> None:
    bin_dir = machine(tmp_path)
    (bin_dir / "go").unlink()
    assert run(bin_dir, "demo").returncode == 0
    proc = run(bin_dir, "test")
    assert proc.returncode == 1
    assert "make test: Go 1.26+ is needed but was not found on PATH" in proc.stderr


def test_a_configured_broker_needs_neither_java_nor_maven(tmp_path: Path) -> None:
    bin_dir = machine(tmp_path, java="1.8.0_392")
    (bin_dir / "mvn").unlink()
    missing = run(bin_dir, "demo")
    assert missing.returncode == 1
    assert "Java 17+ is needed but 8.0 was found" in missing.stderr
    assert "Maven 3+ is needed but was not found on PATH" in missing.stderr
    assert run(bin_dir, "demo", NBO_KAFKA_BOOTSTRAP="127.0.0.1:9092").returncode == 0
