#!/usr/bin/env bash
# Checks the tools `make test` / `make demo` need before anything is installed or started, and
# prints one line per missing or too old tool, saying what is needed and how to get it.
#   usage: scripts/check-prereqs.sh test|demo
# The versions here are the ones the README's prerequisites state (keep the two in step):
#   Python 3.11+      the package (pyproject.toml requires-python)
#   Java 17+, Maven   the local Kafka 4 broker, assembled from Maven Central's jars
#                     (not needed when NBO_KAFKA_BOOTSTRAP points at a broker)
#   redis-server 6.2+ the local Redis and the Redis failure tests (installed with apt-get by
#                     `nbo stack up` when missing and running as root)
#   Go 1.26+          `make test` only: kustomize v5.8.2 and kubeconform v0.8.0 for the manifest checks
#   chromium, chromedriver  `make test` only: the console's browser tests (Debian's chromium and
#                     chromium-driver; installed with apt-get by `nbo stack browser` as root)
set -uo pipefail

target=${1:-test}
PYTHON=${PYTHON:-python3}
problems=()

# version_at_least FOUND WANTED: numeric dotted comparison
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

need() { # name found-version wanted-version how-to-get
  local name=$1 found=$2 wanted=$3 hint=$4
  if [ -z "$found" ]; then
    problems+=("$name $wanted+ is needed but was not found on PATH: $hint")
  elif ! version_at_least "$found" "$wanted"; then
    problems+=("$name $wanted+ is needed but $found was found: $hint")
  fi
}

py=$(command -v "$PYTHON" >/dev/null 2>&1 &&
  "$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
need Python "$py" 3.11 "install python3 (3.11 or newer) with its venv module"
if [ -n "$py" ] && ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  problems+=("Python's venv/ensurepip modules are missing: install python3-venv")
fi

if [ -z "${NBO_KAFKA_BOOTSTRAP:-}" ]; then
  java=""
  if command -v java >/dev/null 2>&1; then
    # `openjdk version "17.0.15"` or `java version "1.8.0_392"` on stderr
    java=$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9._]*\)".*/\1/p' | head -n1)
    java=${java#1.}
    java=${java%%_*}
  fi
  need Java "$java" 17 "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless) for the local Kafka broker"
  mvn_found=""
  command -v mvn >/dev/null 2>&1 && mvn_found=3
  need Maven "$mvn_found" 3 "install Maven (apt-get install maven): it fetches the Kafka jars once"
fi

if [ -z "${NBO_REDIS_URL:-}" ] || [ "$target" = test ]; then
  redis=""
  if command -v redis-server >/dev/null 2>&1; then
    redis=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
    need redis-server "$redis" 6.2 "install Redis 6.2+ (apt-get install redis-server)"
  elif [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    need redis-server "" 6.2 "install Redis 6.2+ (apt-get install redis-server); as root it is installed for you"
  fi
fi

if [ "$target" = test ]; then
  go=""
  command -v "${GO:-go}" >/dev/null 2>&1 &&
    go=$("${GO:-go}" env GOVERSION 2>/dev/null | sed 's/^go//')
  need Go "$go" 1.26 "install Go 1.26+ (it builds kustomize and kubeconform for the manifest checks)"
  if { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; } &&
    { [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; }; then
    problems+=("chromium and chromedriver are needed for the console's browser tests: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); as root they are installed for you")
  fi
fi

if [ ${#problems[@]} -gt 0 ]; then
  for line in "${problems[@]}"; do
    echo "make $target: $line" >&2
  done
  exit 1
fi
