#!/usr/bin/env bash
# Creates the wazuh-misp topics (idempotent: existing topics count as success) and any extra topics given
# as NAME:PARTITIONS[:compact] arguments. Replication factor 1. Waits until all partitions have leaders.
#
#   kafka/create-topics.sh                            # the project's topics
#   kafka/create-topics.sh it-test-1:3 it-state:1:compact  # project topics + these
#   kafka/create-topics.sh --no-defaults it-test-1:3  # only these
#   kafka/create-topics.sh --describe [NAME ...]      # print partitions / cleanup.policy (all topics if no NAME)
#
# Bootstrap: $KAFKA_BROKERS, else 127.0.0.1:${KAFKA_PORT:-9092}.
# Partition overrides: KAFKA_PARTITIONS_<TOPIC> with the name upper-cased and '-' -> '_',
#   e.g. KAFKA_PARTITIONS_WAZUH_ALERTS=12. Other env: KAFKA_TOPICS_TIMEOUT (seconds, 30).
set -euo pipefail

KAFKA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=common.sh
source "$KAFKA_DIR/common.sh"
kafka_init

# name:partitions[:cleanup.policy]
default_topics=(
    wazuh-alerts:6
    wazuh-alerts-enriched:6
    wazuh-iocs:3
    wazuh-alerts-dlq:3
    wazuh-misp-indicators:1:compact
)

defaults=1 describe=0
args=()
for arg in "$@"; do
    case $arg in
    --no-defaults) defaults=0 ;;
    --describe) describe=1 ;;
    -h | --help)
        sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    -*) kafka_die "unknown option '$arg'" ;;
    *) args+=("$arg") ;;
    esac
done

specs=()
if ((describe)); then
    specs=(--describe "${args[@]}")
else
    if ((defaults)); then
        for t in "${default_topics[@]}"; do
            IFS=: read -r name parts policy <<<"$t"
            var="KAFKA_PARTITIONS_${name^^}"
            var=${var//-/_}
            var=${var//./_}
            parts=${!var:-$parts}
            [[ $parts =~ ^[1-9][0-9]*$ ]] || kafka_die "$var must be a positive integer, got '$parts'"
            specs+=("$name:$parts${policy:+:$policy}")
        done
    fi
    specs+=("${args[@]}")
    ((${#specs[@]})) || kafka_die "no topics to create (--no-defaults without NAME:PARTITIONS arguments)"
fi

bootstrap=${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}
timeout_s=${KAFKA_TOPICS_TIMEOUT:-30}
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || kafka_die "KAFKA_TOPICS_TIMEOUT must be a positive number of seconds"

kafka_need_java
kafka_ensure_jars

# Compile CreateTopics.java once into build/ (a single-file source launch would recompile it on every
# call, ~2-3 s); recompiled when the source or the jars change.
build="$KAFKA_DIR/build"
if [[ ! -f $build/CreateTopics.class || $KAFKA_DIR/CreateTopics.java -nt $build/CreateTopics.class ||
    $KAFKA_LIB_DIR/.resolved -nt $build/CreateTopics.class ]]; then
    kafka_lock build
    tmp="$KAFKA_DIR/build.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    "$KAFKA_JAVAC" -nowarn -d "$tmp" -cp "$KAFKA_LIB_DIR/*" "$KAFKA_DIR/CreateTopics.java" ||
        kafka_die "compiling CreateTopics.java failed"
    rm -rf "$build"
    mv "$tmp" "$build"
fi

exec "$KAFKA_JAVA" -Xmx128m -XX:TieredStopAtLevel=1 "$KAFKA_TOOLS_LOG4J" -cp "$build:$KAFKA_LIB_DIR/*" \
    CreateTopics --bootstrap "$bootstrap" --timeout-ms "$((timeout_s * 1000))" "${specs[@]}"
