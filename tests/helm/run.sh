#!/usr/bin/env bash
# Chart, alert-rule, dashboard and Dockerfile tests. Offline once the tools are cached.
#
#   tests/helm/run.sh                        # everything below
#   METRICS_FILE=scrape.txt tests/helm/run.sh  # + every metric the dashboard/rules
#                                              #   query must be in that exposition
#   WAZUH_MISP_BIN=path/to/wazuh-misp tests/helm/run.sh
#                                              # `check-config` on every rendered config
#                                              # (default: newest target/*/wazuh-misp if
#                                              # built; WAZUH_MISP_BIN=none skips)
#
# Steps (each counted as one test):
#   helm lint --strict           default values and every tests/helm/values/*.yaml
#   helm template                same set; rendered manifests validated offline by
#                                validate_manifests.py (kubernetes-validate strict for
#                                built-in kinds at $K8S_VERSIONS, structural schemas in
#                                crd-schemas/ for ServiceMonitor/PrometheusRule/ScaledObject,
#                                chart policy checks, rendered TOML parsed)
#   NOTES.txt                    renders for every values file
#   bad-values/*.yaml            `helm template` must fail with the `# expect:` regex
#   bad-manifests/*.yaml         the validator must reject them (`# expect:` regex)
#   alert rules                  PrometheusRule -> rules file; promtool check rules;
#                                promtool test rules with rules-test.yaml
#   dashboard                    JSON parses + structure (check_dashboard.py)
#   metric names                 extractor self-test; fixtures/metrics-{complete,missing}.txt
#                                must pass/fail; METRICS_FILE check when set
#   binary cross-check           wazuh-misp check-config on each rendered config (when built)
#   Dockerfile                   hadolint (when installed), .dockerignore entries
#   helm package
# Prints `helm: N passed, M failed` last; exits non-zero on any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/helm"
CHART="$ROOT/helm/wazuh-misp"
TOOLS_DIR="${WAZUH_MISP_TOOLS_DIR:-$HOME/.cache/wazuh-misp}"
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"

if ! tool_env="$(bash "$ROOT/.ci/install-tools.sh")"; then
  echo "install-tools.sh failed" >&2
  echo "helm: 0 passed, 1 failed"
  exit 1
fi
eval "$tool_env"
PY="$TOOLS_DIR/venv-k8s/bin/python"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wazuh-misp-helm.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "helm $(helm version --short) | $(promtool --version 2>&1 | head -n1) | kubernetes-validate $(kubernetes-validate --version) (k8s ${K8S_VERSIONS})"

PASSED=0
FAILED=0
FAILED_NAMES=()
# t NAME CMD...: run CMD, count it, show its output only on failure.
t() {
  local name="$1"; shift
  local log="$WORK/step.log"
  if "$@" >"$log" 2>&1; then
    PASSED=$((PASSED + 1))
    printf 'ok    %s\n' "$name"
    [ -n "${VERBOSE:-}" ] && sed 's/^/      /' "$log"
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      /' "$log" | tail -n 40
  fi
  return 0
}

# expect_fail PATTERN CMD...: CMD must fail and print a line matching PATTERN
# (extended regex, case-insensitive: helm versions word schema errors differently).
expect_fail() {
  local expected="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then
    echo "expected a failure, but the command succeeded"
    return 1
  fi
  if ! grep -qiE -- "$expected" <<<"$out"; then
    echo "failed, but without the expected message: $expected"
    echo "$out" | tail -n 20
    return 1
  fi
  echo "$out" | grep -iE -- "$expected" | head -n 3
}

expected_of() { sed -n 's/^# expect: //p' "$1" | head -n1; }

k8s_args=()
for v in $K8S_VERSIONS; do k8s_args+=(-k "$v"); done
# Every render uses the oldest tested Kubernetes version as the target (Chart.yaml
# requires >=1.25; an old fallback helm would otherwise assume 1.20).
KUBE="${K8S_VERSIONS%% *}"
lint_kube=()
if helm lint --help 2>/dev/null | grep -q -- '--kube-version'; then lint_kube=(--kube-version "$KUBE"); fi

# ------------------------------------------------------------------ chart renders
CASES=("default:")
for f in "$HERE"/values/*.yaml; do
  CASES+=("$(basename "$f" .yaml):$f")
done

# NOTES.txt is not rendered by `helm template`; a copy of the chart renders it
# inside a ConfigMap so template errors in it are caught.
NOTES_CHART="$WORK/notes-chart/wazuh-misp"
mkdir -p "$(dirname "$NOTES_CHART")"
cp -r "$CHART" "$NOTES_CHART"
cat >"$NOTES_CHART/templates/zz-notes-check.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes-check
data:
  notes: |
    {{- include (print .Template.BasePath "/NOTES.txt") . | nindent 4 }}
EOF

render() { # render CASE_FILE OUT
  local vf="$1" out="$2"
  helm template wazuh-misp "$CHART" --namespace wazuh --kube-version "$KUBE" \
    ${vf:+-f "$vf"} >"$out"
}
notes() {
  local vf="$1"
  helm template wazuh-misp "$NOTES_CHART" --namespace wazuh --kube-version "$KUBE" ${vf:+-f "$vf"} \
    --show-only templates/zz-notes-check.yaml | grep -q 'is installed as release'
}

for c in "${CASES[@]}"; do
  name="${c%%:*}"
  vf="${c#*:}"
  t "lint --strict [$name]" helm lint --strict "$CHART" --namespace wazuh "${lint_kube[@]}" ${vf:+-f "$vf"}
  t "template [$name]" render "$vf" "$WORK/$name.yaml"
  t "validate manifests [$name]" "$PY" "$HERE/validate_manifests.py" "$WORK/$name.yaml" "${k8s_args[@]}"
  t "NOTES.txt [$name]" notes "$vf"
done

for f in "$HERE"/bad-values/*.yaml; do
  t "rejects bad values [$(basename "$f" .yaml)]" \
    expect_fail "$(expected_of "$f")" helm template wazuh-misp "$CHART" --namespace wazuh --kube-version "$KUBE" -f "$f"
done

for f in "$HERE"/bad-manifests/*.yaml; do
  t "validator rejects [$(basename "$f" .yaml)]" \
    expect_fail "$(expected_of "$f")" "$PY" "$HERE/validate_manifests.py" "$f" "${k8s_args[@]}"
done

# ------------------------------------------------------------------ alert rules
# rules-test.yaml is written against exactly this render (release wazuh-misp in
# namespace wazuh, default thresholds).
RULES_DIR="$WORK/rules"
mkdir -p "$RULES_DIR"
rules_render() {
  helm template wazuh-misp "$CHART" --namespace wazuh --kube-version "$KUBE" --set prometheusRule.enabled=true \
    --show-only templates/prometheusrule.yaml >"$RULES_DIR/prometheusrule.yaml" &&
    "$PY" "$HERE/extract_rules.py" "$RULES_DIR/prometheusrule.yaml" "$RULES_DIR/wazuh-misp-rules.yaml" &&
    cp "$HERE/rules-test.yaml" "$RULES_DIR/rules-test.yaml"
}
t "extract PrometheusRule -> rules file" rules_render
t "promtool check rules [default]" promtool check rules "$RULES_DIR/wazuh-misp-rules.yaml"
# shellcheck disable=SC2016  # $1 is expanded by the inner bash
t "promtool test rules (rules-test.yaml)" bash -c 'cd "$1" && promtool test rules rules-test.yaml' _ "$RULES_DIR"
full_rules() {
  "$PY" "$HERE/extract_rules.py" "$WORK/full.yaml" "$RULES_DIR/full-rules.yaml" &&
    promtool check rules "$RULES_DIR/full-rules.yaml"
}
t "promtool check rules [full: custom selector labels + additionalRules]" full_rules

# ------------------------------------------------------------------ dashboard, metric names
t "dashboard JSON parses and has the promised panels" "$PY" "$HERE/check_dashboard.py" "$CHART/dashboards/wazuh-misp.json"
t "metric name extractor self-test" "$PY" "$HERE/metric_names.py" --self-test
t "metric_names.py accepts a complete exposition (fixtures/metrics-complete.txt)" \
  "$PY" "$HERE/metric_names.py" "$HERE/fixtures/metrics-complete.txt" --rules "$RULES_DIR/wazuh-misp-rules.yaml"
t "metric_names.py rejects missing names (fixtures/metrics-missing.txt)" \
  expect_fail "missing wazuh_misp_lookup_cache_misses_total.*" "$PY" "$HERE/metric_names.py" \
  "$HERE/fixtures/metrics-missing.txt" --rules "$RULES_DIR/wazuh-misp-rules.yaml"
t "metric_names.py reports histogram series by base name" \
  expect_fail "missing wazuh_misp_end_to_end_latency_seconds_count \(histogram wazuh_misp_end_to_end_latency_seconds\)" \
  "$PY" "$HERE/metric_names.py" "$HERE/fixtures/metrics-missing.txt" --rules "$RULES_DIR/wazuh-misp-rules.yaml"
if [ -n "${METRICS_FILE:-}" ]; then
  t "metric names exported ($METRICS_FILE)" "$PY" "$HERE/metric_names.py" "$METRICS_FILE" \
    --rules "$RULES_DIR/wazuh-misp-rules.yaml"
else
  echo "skip  metric names against a scrape (set METRICS_FILE)"
fi

# ------------------------------------------------------------------ binary cross-check
# `wazuh-misp check-config` on every rendered config, when a binary is at hand:
# WAZUH_MISP_BIN, else the newer of target/{release,debug}/wazuh-misp (nothing is built
# here). WAZUH_MISP_BIN=none skips it.
if [ -z "${WAZUH_MISP_BIN:-}" ]; then
  for cand in "$ROOT/target/release/wazuh-misp" "$ROOT/target/debug/wazuh-misp"; do
    if [ -x "$cand" ] && { [ -z "${WAZUH_MISP_BIN:-}" ] || [ "$cand" -nt "$WAZUH_MISP_BIN" ]; }; then
      WAZUH_MISP_BIN="$cand"
    fi
  done
fi
if [ -n "${WAZUH_MISP_BIN:-}" ] && [ "$WAZUH_MISP_BIN" != none ]; then
  echo "      (check-config with $WAZUH_MISP_BIN)"
  for c in "${CASES[@]}"; do
    name="${c%%:*}"
    t "wazuh-misp check-config accepts the rendered config [$name]" \
      "$PY" "$HERE/check_config_binary.py" "$WAZUH_MISP_BIN" "$WORK/$name.yaml"
  done
else
  echo "skip  wazuh-misp check-config on the rendered configs (no binary; set WAZUH_MISP_BIN)"
fi

# ------------------------------------------------------------------ Dockerfile, packaging
if [ -x "$TOOLS_DIR/venv-k8s/bin/hadolint" ]; then
  t "hadolint Dockerfile" "$TOOLS_DIR/venv-k8s/bin/hadolint" --no-color "$ROOT/Dockerfile"
else
  echo "skip  hadolint Dockerfile (hadolint not installed)"
fi
dockerfile_facts() {
  local df="$ROOT/Dockerfile" di="$ROOT/.dockerignore" ok=0
  grep -q '^FROM rust:.*bookworm AS builder' "$df" || { echo "no rust bookworm builder stage"; ok=1; }
  grep -qE '^ENTRYPOINT \["/usr/local/bin/wazuh-misp"\]' "$df" || { echo "ENTRYPOINT"; ok=1; }
  grep -qF 'CMD ["run", "--config", "/etc/wazuh-misp/config.toml"]' "$df" || { echo "CMD"; ok=1; }
  grep -qE '^USER 65532' "$df" || { echo "USER 65532"; ok=1; }
  grep -q 'config/default.toml' "$df" || { echo "config/default.toml not copied"; ok=1; }
  for p in target/ kafka/lib/ kafka/data/ .git; do
    grep -qxF "$p" "$di" || { echo ".dockerignore lacks $p"; ok=1; }
  done
  return $ok
}
t "Dockerfile/.dockerignore essentials" dockerfile_facts
t "helm package" helm package "$CHART" --destination "$WORK/pkg"

echo
if [ "$FAILED" -gt 0 ]; then
  printf 'failed: %s\n' "${FAILED_NAMES[@]}"
fi
echo "helm: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
