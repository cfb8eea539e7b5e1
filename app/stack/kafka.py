"""The local Kafka broker: a single KRaft node (broker + controller) run from Maven Central jars.

Layout (``stack_dir`` and ``stack_cache_dir`` from the settings, made absolute):

* ``<stack_cache_dir>/kafka-<version>/libs/*.jar`` - resolved once with Maven; the marker file
  ``libs/.complete`` says the copy finished.
* ``<stack_dir>/kafka/`` - ``server.properties``, ``log4j2.properties``, ``cluster.id``, the log
  directory ``data/``, the broker log ``server.log``, the JVM's own output ``console.log`` and the
  pid file ``kafka.pid``.
"""

from __future__ import annotations

import base64
import logging
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from app.stack.errors import StackError, StackPrerequisiteMissing
from app.stack.kafka_wire import KafkaProtocolError, fetch_metadata
from app.stack.process import tail

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
NODE_ID = 1
MIN_JAVA_MAJOR = 17
MAVEN_TIMEOUT_S = 900.0
"""How long jar resolution may take, seconds (first run downloads about 50 MB)."""
FORMAT_TIMEOUT_S = 120.0
"""How long ``kafka-storage format`` may take, seconds."""
JAVA_VERSION_TIMEOUT_S = 30.0
MAIN_CLASS = "kafka.Kafka"
COMPLETE_MARKER = ".complete"
_HEAP_RE = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")


def _resource_text(name: str) -> str:
    return resources.files("app.stack").joinpath("resources", name).read_text(encoding="utf-8")


def kafka_version() -> str:
    """The Kafka version the bundled ``pom.xml`` resolves (its ``kafka.version`` property)."""
    match = re.search(
        r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", _resource_text("pom.xml")
    )
    if match is None:
        raise StackError("app/stack/resources/pom.xml has no <kafka.version> property")
    return match.group(1)


@dataclass(frozen=True)
class KafkaPaths:
    """Where the local broker's files live (all absolute)."""

    home: Path
    """``<stack_dir>/kafka``."""
    libs: Path
    """``<stack_cache_dir>/kafka-<version>/libs``."""

    @classmethod
    def create(cls, stack_dir: Path, cache_dir: Path, version: str) -> KafkaPaths:
        """Paths for ``stack_dir`` and ``cache_dir`` (resolved against the working directory)."""
        return cls(
            home=stack_dir.resolve() / "kafka",
            libs=cache_dir.resolve() / f"kafka-{version}" / "libs",
        )

    @property
    def server_properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def log4j_config(self) -> Path:
        return self.home / "log4j2.properties"

    @property
    def cluster_id_file(self) -> Path:
        return self.home / "cluster.id"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def server_log(self) -> Path:
        return self.home / "server.log"

    @property
    def console_log(self) -> Path:
        return self.home / "console.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def cmdline_markers(self) -> tuple[str, ...]:
        """Substrings that identify our broker in ``/proc/<pid>/cmdline``."""
        return (MAIN_CLASS, str(self.server_properties))


# --- prerequisites ----------------------------------------------------------------------------


def parse_java_major(version_output: str) -> int | None:
    """Major version from ``java -version`` output (``"1.8.0_3"`` -> 8, ``"17.0.15"`` -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def find_java() -> str:
    """Path of a ``java`` 17+ on PATH; raises :class:`StackPrerequisiteMissing` otherwise."""
    hint = "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)"
    java = shutil.which("java")
    if java is None:
        raise StackPrerequisiteMissing(f"Java {MIN_JAVA_MAJOR}+ not found on PATH: {hint}.")
    try:
        result = subprocess.run(
            [java, "-version"],
            capture_output=True,
            text=True,
            timeout=JAVA_VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackPrerequisiteMissing(f"`{java} -version` failed ({exc}): {hint}.") from exc
    major = parse_java_major(result.stderr + result.stdout)
    if major is None or major < MIN_JAVA_MAJOR:
        found = (result.stderr or result.stdout).strip().splitlines()[:1]
        raise StackPrerequisiteMissing(
            f"Java {MIN_JAVA_MAJOR}+ needed for Kafka but {java} is "
            f"{found[0] if found else 'of unknown version'}: {hint}."
        )
    return java


def find_maven() -> str:
    """Path of ``mvn`` on PATH; raises :class:`StackPrerequisiteMissing` otherwise."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackPrerequisiteMissing(
            "Maven not found on PATH; it is needed once to fetch the Kafka jars from Maven "
            "Central: install it (apt-get install maven)."
        )
    return mvn


# --- jars -------------------------------------------------------------------------------------


def jars_complete(libs: Path) -> bool:
    """Whether ``libs`` holds a finished copy of the jars (marker present, jars present)."""
    return (libs / COMPLETE_MARKER).is_file() and any(libs.glob("kafka_*.jar"))


def ensure_jars(paths: KafkaPaths) -> None:
    """Resolve the broker's jars into ``paths.libs`` with Maven, unless already complete.

    Copies into ``libs.partial`` first and renames when Maven succeeded, so an interrupted run
    never looks complete.
    """
    libs = paths.libs
    if jars_complete(libs):
        return
    mvn = find_maven()
    root = libs.parent
    root.mkdir(parents=True, exist_ok=True)
    pom = root / "pom.xml"
    pom.write_text(_resource_text("pom.xml"), encoding="utf-8")
    partial = root / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    log.info("resolving Kafka jars from Maven Central into %s (once)...", libs)
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(
            argv, cwd=root, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"Maven did not resolve the Kafka jars within {MAVEN_TIMEOUT_S:.0f} s "
            f"(command: {' '.join(argv)})."
        ) from exc
    jars = sorted(p.name for p in partial.glob("*.jar")) if partial.is_dir() else []
    if result.returncode != 0 or not any(name.startswith("kafka_") for name in jars):
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StackError(
            f"Maven could not resolve the Kafka jars (exit {result.returncode}; command: "
            f"{' '.join(argv)}). Is Maven Central reachable? Last lines of its output:\n{output}"
        )
    (partial / COMPLETE_MARKER).write_text("\n".join(jars) + "\n", encoding="utf-8")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    log.info("resolved %d Kafka jars", len(jars))


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScramListener:
    """An extra SASL_PLAINTEXT listener with one SCRAM-SHA-512 user (off unless configured)."""

    port: int
    username: str
    password: str

    def format_argument(self) -> str:
        """The ``--add-scram`` value that creates the user when the storage is formatted."""
        return f"SCRAM-SHA-512=[name={self.username},password={self.password}]"


@dataclass(frozen=True)
class TlsListener:
    """An extra SSL listener that requires a client certificate (mutual TLS; off unless
    configured). ``keystore``: PEM with the broker's private key (PKCS#8, unencrypted) and
    certificate chain; ``truststore``: PEM with the CA(s) whose client certificates are
    accepted."""

    port: int
    keystore: Path
    truststore: Path


def render_server_properties(
    kafka_port: int,
    controller_port: int,
    data_dir: Path,
    scram: ScramListener | None = None,
    tls: TlsListener | None = None,
) -> str:
    """``server.properties`` of a single-node KRaft broker+controller on 127.0.0.1, with an
    optional SASL_PLAINTEXT (SCRAM-SHA-512) listener and an optional mutual-TLS listener
    besides the PLAINTEXT one."""
    entries = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{kafka_port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": _escape_property(str(data_dir)),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
    }
    if scram is not None:
        sasl = f"SASL_PLAINTEXT://{HOST}:{scram.port}"
        entries["listeners"] += f",{sasl}"
        entries["advertised.listeners"] += f",{sasl}"
        entries["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
        entries["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
        entries["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    if tls is not None:
        ssl = f"SSL://{HOST}:{tls.port}"
        entries["listeners"] += f",{ssl}"
        entries["advertised.listeners"] += f",{ssl}"
        entries["listener.security.protocol.map"] += ",SSL:SSL"
        prefix = "listener.name.ssl.ssl."
        entries[prefix + "keystore.type"] = "PEM"
        entries[prefix + "keystore.location"] = _escape_property(str(tls.keystore))
        entries[prefix + "truststore.type"] = "PEM"
        entries[prefix + "truststore.location"] = _escape_property(str(tls.truststore))
        entries[prefix + "client.auth"] = "required"
    header = "# Generated by `nbo stack up` from the NBO_STACK_* settings; edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in entries.items())


def _escape_property(value: str) -> str:
    """Escape a value for a Java ``.properties`` file."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n")
    for char in ":=#!":
        out = out.replace(char, "\\" + char)
    return out


def validate_heap(heap: str) -> str:
    """``heap`` if it is a valid ``-Xmx`` size (``512m``, ``1g``); else :class:`StackError`."""
    if not _HEAP_RE.match(heap):
        raise StackError(
            f"NBO_STACK_KAFKA_HEAP={heap!r} is not a JVM heap size; use e.g. 512m or 1g."
        )
    return heap


def new_cluster_id() -> str:
    """A fresh KRaft cluster id: a random UUID as 22 url-safe base64 characters.

    Same format as ``kafka-storage random-uuid``; like Kafka, never starts with ``-``.
    """
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not value.startswith("-"):
            return value


def write_config(
    paths: KafkaPaths,
    kafka_port: int,
    controller_port: int,
    scram: ScramListener | None = None,
    tls: TlsListener | None = None,
) -> None:
    """Write ``server.properties`` and ``log4j2.properties`` into ``paths.home``."""
    paths.home.mkdir(parents=True, exist_ok=True)
    paths.server_properties.write_text(
        render_server_properties(kafka_port, controller_port, paths.data_dir, scram, tls),
        encoding="utf-8",
    )
    paths.log4j_config.write_text(_resource_text("log4j2.properties"), encoding="utf-8")


def config_matches(
    paths: KafkaPaths,
    kafka_port: int,
    controller_port: int,
    scram: ScramListener | None = None,
    tls: TlsListener | None = None,
) -> bool:
    """Whether the ``server.properties`` on disk is what these settings would generate."""
    try:
        current = paths.server_properties.read_text(encoding="utf-8")
    except OSError:
        return False
    expected = render_server_properties(kafka_port, controller_port, paths.data_dir, scram, tls)
    return current == expected


def _jvm_common(java: str, paths: KafkaPaths) -> list[str]:
    return [
        java,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={paths.log4j_config}",
        f"-Dkafka.logs.dir={paths.home}",
        "-cp",
        f"{paths.libs}/*",
    ]


def ensure_formatted(java: str, paths: KafkaPaths, scram: ScramListener | None = None) -> None:
    """Format the KRaft log directory once; the cluster id is kept in ``cluster.id``.

    With ``scram``, its user is created in the metadata at format time (a storage formatted
    before SASL was enabled has no such user: `nbo stack down` and remove the stack dir).
    """
    if (paths.data_dir / "meta.properties").is_file():
        return
    if paths.cluster_id_file.is_file():
        cluster_id = paths.cluster_id_file.read_text(encoding="ascii").strip()
    else:
        cluster_id = new_cluster_id()
        paths.cluster_id_file.write_text(cluster_id + "\n", encoding="ascii")
    log.info("formatting Kafka storage in %s (cluster id %s)...", paths.data_dir, cluster_id)
    argv = [
        *_jvm_common(java, paths),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(paths.server_properties),
        "--ignore-formatted",
        *(["--add-scram", scram.format_argument()] if scram is not None else []),
    ]
    try:
        result = subprocess.run(
            argv,
            cwd=paths.home,
            capture_output=True,
            text=True,
            timeout=FORMAT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"formatting Kafka storage took more than {FORMAT_TIMEOUT_S:.0f} s; see "
            f"{paths.server_log}."
        ) from exc
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StackError(
            f"formatting Kafka storage in {paths.data_dir} failed (exit {result.returncode}). "
            f"Last lines of its output:\n{output}\n{tail(paths.server_log, 10)}".rstrip()
        )


def broker_argv(java: str, paths: KafkaPaths, heap: str) -> list[str]:
    """The command line that runs the broker in the foreground."""
    common = _jvm_common(java, paths)
    return [
        common[0],
        f"-Xmx{validate_heap(heap)}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        *common[1:],
        MAIN_CLASS,
        str(paths.server_properties),
    ]


# --- readiness --------------------------------------------------------------------------------


def kafka_answers(port: int, timeout_s: float = 2.0) -> bool:
    """Whether the broker on ``127.0.0.1:port`` answers a metadata request listing itself."""
    try:
        metadata = fetch_metadata(HOST, port, timeout_s)
    except (OSError, KafkaProtocolError):
        return False
    return any(broker.port == port for broker in metadata.brokers)


def log_excerpt(paths: KafkaPaths, lines: int = 30) -> str:
    """The last ``lines`` of the broker log, plus the JVM console output when it has any."""
    parts = []
    server = tail(paths.server_log, lines)
    if server:
        parts.append(f"Last lines of {paths.server_log}:\n{server}")
    console = tail(paths.console_log, lines)
    if console:
        parts.append(f"Last lines of {paths.console_log}:\n{console}")
    return "\n".join(parts) if parts else f"(no log output in {paths.home})"
