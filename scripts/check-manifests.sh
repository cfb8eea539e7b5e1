#!/usr/bin/env bash
# Render every Kubernetes overlay and validate it offline, with no cluster and no GitHub access:
#   1. kustomize and kubeconform are built with `go install` (Go module proxy) into .cache/go-bin,
#      once per pinned version (a stamp file per version; later runs reuse the binaries);
#   2. each deploy/k8s/overlays/<name> is rendered into .cache/rendered/<name>.yaml;
#   3. kubeconform validates them, strictly, against the JSON schemas vendored in deploy/schemas/
#      (every kind used has one: a kind without a schema is an error, never skipped).
# Exit status: non-zero when a tool cannot be installed, an overlay does not render, or a resource
# is invalid. Needs: go (1.26 or newer) on PATH, or GO=/path/to/go.
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=v5.8.2    # v5.8.3 needs go >= 1.27
KUBECONFORM_VERSION=v0.8.0
BIN="$PWD/.cache/go-bin"
OUT="$PWD/.cache/rendered"
SCHEMAS="deploy/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
GO="${GO:-go}"
INSTALL_LOG="$PWD/.cache/go-install.log"

install_tool() { # name module version
  local name=$1 module=$2 version=$3
  local stamp="$BIN/.$name-$version"
  if [ -x "$BIN/$name" ] && [ -f "$stamp" ]; then
    return 0
  fi
  if ! command -v "$GO" >/dev/null 2>&1; then
    echo "check-manifests: '$GO' not found; Go 1.26+ is needed to build $name" >&2
    exit 2
  fi
  echo "== go install $module@$version (output: $INSTALL_LOG)"
  mkdir -p "$BIN"
  rm -f "$BIN/.$name-"*
  # The go tool's own chatter (`go: downloading ...`, which a cold module cache prints) goes to
  # a log file, so this script's output is only its own lines and the tools' results.
  if ! GOBIN="$BIN" GOFLAGS=-mod=mod GOTOOLCHAIN=local "$GO" install "$module@$version" \
    >>"$INSTALL_LOG" 2>&1; then
    echo "check-manifests: go install $module@$version failed; last lines of $INSTALL_LOG:" >&2
    tail -n 20 "$INSTALL_LOG" >&2
    exit 2
  fi
  touch "$stamp"
}

install_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
install_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

rm -rf "$OUT"
mkdir -p "$OUT"
rendered=()
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  echo "== kustomize build $overlay"
  "$BIN/kustomize" build "$overlay" >"$OUT/$name.yaml"
  rendered+=("$OUT/$name.yaml")
done
if [ ${#rendered[@]} -eq 0 ]; then
  echo "check-manifests: no overlay under deploy/k8s/overlays" >&2
  exit 1
fi

echo "== kubeconform -strict (schemas: deploy/schemas)"
status=0
report=$("$BIN/kubeconform" -strict -summary -schema-location "$SCHEMAS" "${rendered[@]}") || status=$?
printf '%s\n' "$report"
if ! grep -q '^Summary: ' <<<"$report"; then
  echo "check-manifests: kubeconform printed no 'Summary:' line (exit $status)" >&2
  exit 1
fi
exit "$status"
