#!/usr/bin/env bash
# The project's test command (README, .ci/run): starts what the tests need — a real Apache
# Kafka broker (kafka/start.sh) and mmisp-api as a MISP (tests/mmisp/start.sh), fetches PyMISP's
# event schema (tests/pymisp/fetch-schema.sh) — runs every
# test, checks the Helm chart and the alert rules, and stops the services again.
#
#   bash tests/run.sh            # everything
#   TEST_FILTER=semantics bash tests/run.sh   # pass a filter to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Ports of our own, so a broker or MISP the user runs on the defaults is never touched.
export KAFKA_PORT="${TEST_KAFKA_PORT:-39092}"
export KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT}"
export MMISP_PORT="${TEST_MMISP_PORT:-18080}"
export MMISP_STATE_DIR="${ROOT}/tests/mmisp/.state"

cleanup() {
  status=$?
  bash "$ROOT/tests/mmisp/stop.sh" >/dev/null 2>&1 || true
  bash "$ROOT/kafka/stop.sh" >/dev/null 2>&1 || true
  exit $status
}
trap cleanup EXIT

echo "== starting the Kafka broker on $KAFKA_BROKERS"
bash kafka/start.sh
echo "== starting mmisp-api on 127.0.0.1:$MMISP_PORT"
bash tests/mmisp/start.sh --seed
export MMISP_URL="$(cat "$MMISP_STATE_DIR/base_url")"
export MMISP_API_KEY_FILE="$MMISP_STATE_DIR/api_key"

echo "== PyMISP's event JSON schema (request bodies are validated against it)"
PYMISP_SCHEMA="$(bash tests/pymisp/fetch-schema.sh)"
export PYMISP_SCHEMA

echo "== cargo test (unit, integration, real broker, mmisp)"
export METRICS_SCRAPE_OUT="${ROOT}/target/metrics-scrape.txt"
cargo test --release --locked --features broker-tests,misp-tests --lib --bins --tests ${TEST_FILTER:+-- "$TEST_FILTER"}

echo "== Helm chart, dashboard and alert rules"
if [ -z "${TEST_FILTER:-}" ]; then
  METRICS_FILE="$METRICS_SCRAPE_OUT" bash tests/helm/run.sh
fi
echo "== all tests passed"
