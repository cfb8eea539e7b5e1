#!/usr/bin/env bash
# The check to run before a release: `make test` on a fresh clone of HEAD with every cache cold.
#   usage: scripts/cold-check.sh [WORK_DIR]     (default: a new temporary directory)
# Go's module and build caches, uv's and pip's caches and Maven's local repository all point at
# empty directories under WORK_DIR, so nothing a previous run downloaded can hide a missing step.
# The local stack of the clone listens on other ports (29092/29093/26379 unless NBO_STACK_* say
# otherwise), so a stack already running from this checkout is left alone.
# Exit status: that of `make test`. Its whole output is also kept in WORK_DIR/make-test.log.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work=${1:-$(mktemp -d -t nbo-cold.XXXXXX)}
mkdir -p "$work"
caches="$work/caches"
rm -rf "$work/repo" "$caches"
mkdir -p "$caches"/{gomod,gocache,uv,pip,m2}
git clone --quiet "$src" "$work/repo"
echo "== cold check of $(git -C "$work/repo" rev-parse --short HEAD) in $work/repo (caches: $caches)"
cd "$work/repo"
status=0
env \
  GOMODCACHE="$caches/gomod" GOCACHE="$caches/gocache" \
  UV_CACHE_DIR="$caches/uv" PIP_CACHE_DIR="$caches/pip" \
  MAVEN_OPTS="-Dmaven.repo.local=$caches/m2" \
  NBO_STACK_KAFKA_PORT="${NBO_STACK_KAFKA_PORT:-29092}" \
  NBO_STACK_CONTROLLER_PORT="${NBO_STACK_CONTROLLER_PORT:-29093}" \
  NBO_STACK_REDIS_PORT="${NBO_STACK_REDIS_PORT:-26379}" \
  make test 2>&1 | tee "$work/make-test.log" || status=$?
# Go's module cache is written read-only; make it removable for whoever cleans WORK_DIR.
chmod -R u+w "$caches/gomod" 2>/dev/null || true
echo "== cold check: make test exited $status (log: $work/make-test.log)"
exit "$status"
