#!/usr/bin/env bash
# Stops the broker started by start.sh for $KAFKA_PORT (default 9092), by its own PID: SIGTERM (clean
# shutdown), wait up to KAFKA_STOP_TIMEOUT seconds (30), then SIGKILL. Exits 0 if it was not running.
#
#   kafka/stop.sh            # stop, keep topics and data
#   kafka/stop.sh --wipe     # stop and delete this port's data dir (kafka/data/$KAFKA_PORT): next start
#                            # formats a fresh, empty cluster
set -euo pipefail

KAFKA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=common.sh
source "$KAFKA_DIR/common.sh"

wipe=0
for arg in "$@"; do
    case $arg in
    --wipe) wipe=1 ;;
    -h | --help)
        sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) kafka_die "unknown argument '$arg' (usage: stop.sh [--wipe])" ;;
    esac
done

kafka_init
kafka_lock "port-$KAFKA_PORT"

if pid=$(kafka_broker_pid); then
    start=$SECONDS
    kafka_stop_pid "$pid"
    rm -f "$KAFKA_PID_FILE"
    echo "kafka: broker on 127.0.0.1:$KAFKA_PORT stopped (pid $pid, $((SECONDS - start))s)"
else
    rm -f "$KAFKA_PID_FILE"
    echo "kafka: no broker running on 127.0.0.1:$KAFKA_PORT"
fi

if ((wipe)); then
    rm -rf "$KAFKA_DATA_DIR" "$KAFKA_CONFIG"
    echo "kafka: wiped $KAFKA_DATA_DIR"
fi
