#!/usr/bin/env bash
# The whole test suite: lint, types, then every pytest tier against a real Kafka and Redis.
# Services: NBO_KAFKA_BOOTSTRAP / NBO_REDIS_URL if both are set; otherwise the local stack is
# brought up here and brought down again on exit (even on failure) unless it was already running.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
started_stack=0

cleanup() {
  if [ "$started_stack" = 1 ]; then
    echo "== stopping the local stack"
    "$VENV/bin/nbo" stack down || true
  fi
}
trap cleanup EXIT

set -e
echo "== ruff"
"$VENV/bin/ruff" check app agents tests
"$VENV/bin/ruff" format --check app agents tests
echo "== mypy --strict (app, agents)"
"$VENV/bin/mypy"

if [ -z "${NBO_KAFKA_BOOTSTRAP:-}" ] || [ -z "${NBO_REDIS_URL:-}" ]; then
  if ! "$VENV/bin/nbo" stack status --check >/dev/null 2>&1; then
    started_stack=1
  fi
  echo "== starting the local stack (Kafka + Redis)"
  "$VENV/bin/nbo" stack up
  # shellcheck disable=SC1091
  source "${NBO_STACK_DIR:-.stack}/env"
fi
echo "== the headless browser of the console's tests (Debian's chromium + chromium-driver)"
"$VENV/bin/nbo" stack browser
# Services are required in this run: a missing broker or Redis fails, never skips.
export NBO_REQUIRE_SERVICES=1
echo "== pytest"
"$VENV/bin/pytest" "$@"
