# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are used by the scripts that source this file
# Shared helpers for start.sh, stop.sh and create-topics.sh. Source it after setting KAFKA_DIR
# (the absolute path of this directory); it is not meant to be run on its own.

KAFKA_JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
KAFKA_JAVAC="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
# Pinned so that resolution does not depend on Maven's default plugin version (2.8 on Maven 3.8).
KAFKA_DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
KAFKA_READY_LINE="Kafka Server started"

kafka_say() { echo "kafka: $*" >&2; }
kafka_die() { echo "kafka: error: $*" >&2; exit 1; }

kafka_valid_port() { [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] && (($1 <= 65535)); }

# Sets the per-port paths. Everything that belongs to one broker is keyed by KAFKA_PORT, so brokers on
# different ports never share a data dir, log dir, generated config or PID file.
kafka_init() {
    KAFKA_PORT="${KAFKA_PORT:-9092}"
    kafka_valid_port "$KAFKA_PORT" || kafka_die "KAFKA_PORT must be a TCP port number, got '$KAFKA_PORT'"
    KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
    kafka_valid_port "$KAFKA_CONTROLLER_PORT" ||
        kafka_die "KAFKA_CONTROLLER_PORT must be a TCP port number, got '$KAFKA_CONTROLLER_PORT'"
    [[ $KAFKA_CONTROLLER_PORT != "$KAFKA_PORT" ]] || kafka_die "KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT"

    KAFKA_LIB_DIR="$KAFKA_DIR/lib"
    KAFKA_DATA_DIR="$KAFKA_DIR/data/$KAFKA_PORT"
    KAFKA_LOG_DIR="$KAFKA_DIR/logs/$KAFKA_PORT"
    KAFKA_CONFIG="$KAFKA_DIR/config/server-$KAFKA_PORT.properties"
    if [[ $KAFKA_PORT == 9092 ]]; then
        KAFKA_PID_FILE="$KAFKA_DIR/kafka.pid"
    else
        KAFKA_PID_FILE="$KAFKA_DIR/kafka-$KAFKA_PORT.pid"
    fi
    KAFKA_TOOLS_LOG4J="-Dlog4j2.configurationFile=$KAFKA_DIR/config/log4j2-tools.properties"
}

# kafka_lock NAME [TIMEOUT_S]: exclusive flock held until the script exits (serialises concurrent
# invocations). The fds are recorded in KAFKA_LOCK_FDS: a long-lived child (the broker) must not inherit
# them, or it would hold the lock for its whole life (see kafka_close_locks).
KAFKA_LOCK_FDS=()
kafka_lock() {
    command -v flock >/dev/null 2>&1 || return 0
    local fd
    mkdir -p "$KAFKA_DIR/logs"
    exec {fd}>"$KAFKA_DIR/logs/.$1.lock"
    KAFKA_LOCK_FDS+=("$fd")
    flock -w "${2:-300}" "$fd" || kafka_die "timed out after ${2:-300}s waiting for lock $KAFKA_DIR/logs/.$1.lock"
}

# Closes the lock fds in the current shell (call it in the subshell that launches the broker).
kafka_close_locks() {
    local fd
    for fd in "${KAFKA_LOCK_FDS[@]}"; do
        exec {fd}>&-
    done
}

# kafka_need_pkg COMMAND DEBIAN_PACKAGE: installs the package with apt-get when the command is missing
# (the machine image normally has Java 17 and Maven; this only matters on a bare machine).
kafka_need_pkg() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        kafka_say "'$1' not found: installing Debian package $2"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2"; } \
            >"${TMPDIR:-/tmp}/kafka-apt-$2.log" 2>&1 ||
            kafka_die "apt-get install $2 failed, see ${TMPDIR:-/tmp}/kafka-apt-$2.log"
        command -v "$1" >/dev/null 2>&1 || kafka_die "'$1' still not found after installing $2"
    else
        kafka_die "'$1' not found; install $2"
    fi
}

# Java 17+ (broker and tools); javac as well, for CreateTopics.java.
kafka_need_java() {
    if [[ -z ${JAVA_HOME:-} ]]; then
        kafka_need_pkg java openjdk-17-jdk-headless
        kafka_need_pkg javac openjdk-17-jdk-headless
    fi
    local major
    major=$("$KAFKA_JAVA" -version 2>&1 | sed -n '1s/^[^"]*"\([0-9][0-9]*\).*/\1/p')
    [[ -n $major ]] || kafka_die "cannot run $KAFKA_JAVA"
    ((major >= 17)) || kafka_die "Kafka 4.x needs Java 17+, $KAFKA_JAVA is Java $major (set JAVA_HOME)"
}

# Copies the runtime classpath into lib/ with Maven, once per pom.xml content (marker lib/.resolved holds
# the pom's sha256, so a warm call costs one sha256sum). Uses the default local repository (~/.m2).
kafka_ensure_jars() {
    local want marker="$KAFKA_LIB_DIR/.resolved"
    want=$(sha256sum "$KAFKA_DIR/pom.xml" | cut -d' ' -f1)
    [[ -f $marker && $(<"$marker") == "$want" ]] && return 0
    kafka_lock resolve
    [[ -f $marker && $(<"$marker") == "$want" ]] && return 0 # resolved by a concurrent run

    kafka_need_java
    kafka_need_pkg mvn maven
    local tmp="$KAFKA_DIR/lib.tmp.$$" mvnlog="$KAFKA_DIR/logs/mvn.log"
    rm -rf "$tmp"
    kafka_say "resolving Kafka jars with Maven into $KAFKA_LIB_DIR (once; log: $mvnlog) ..."
    if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_DIR/pom.xml" "$KAFKA_DEP_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
        tail -n 40 "$mvnlog" >&2
        rm -rf "$tmp"
        kafka_die "Maven could not resolve the Kafka jars (full log: $mvnlog)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || kafka_die "Maven ran but $tmp has no kafka_2.13 jar"
    echo "$want" >"$tmp/.resolved"
    rm -rf "$KAFKA_LIB_DIR"
    mv "$tmp" "$KAFKA_LIB_DIR"
    kafka_say "$(find "$KAFKA_LIB_DIR" -name '*.jar' | wc -l) jars in $KAFKA_LIB_DIR ($(basename "$(compgen -G "$KAFKA_LIB_DIR/kafka_2.13-*.jar")" .jar))"
}

# True when PID is a live kafka.Kafka JVM started with this port's generated config.
kafka_is_our_broker() {
    local pid=$1 args
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
    ((${#args[@]} >= 2)) || return 1 # zombies have an empty cmdline
    [[ ${args[-2]} == kafka.Kafka && ${args[-1]} == "$KAFKA_CONFIG" ]]
}

# Prints the broker's PID: from the PID file, or (if that was lost) by finding the JVM whose command
# line ends in "kafka.Kafka <this port's config>". Fails when no such broker runs.
kafka_broker_pid() {
    local pid d
    if [[ -f $KAFKA_PID_FILE ]]; then
        pid=$(<"$KAFKA_PID_FILE")
        if kafka_is_our_broker "$pid"; then
            echo "$pid"
            return 0
        fi
    fi
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        if kafka_is_our_broker "$pid"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

kafka_alive() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

kafka_port_open() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# kafka_wait_ready PID TIMEOUT_S: 0 = ready (ready line logged and port accepts connections),
# 1 = timed out, 2 = the process died.
kafka_wait_ready() {
    local pid=$1 deadline=$((SECONDS + $2))
    while :; do
        kafka_alive "$pid" || return 2
        if grep -qsF "$KAFKA_READY_LINE" "$KAFKA_LOG_DIR/server.log" && kafka_port_open "$KAFKA_PORT"; then
            return 0
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# kafka_stop_pid PID: SIGTERM (clean shutdown hook), wait up to KAFKA_STOP_TIMEOUT s (30), then SIGKILL.
kafka_stop_pid() {
    local pid=$1 timeout=${KAFKA_STOP_TIMEOUT:-30} i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 5; i++)); do
        kafka_alive "$pid" || return 0
        sleep 0.2
    done
    kafka_say "broker pid $pid did not stop within ${timeout}s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kafka_alive "$pid" || return 0
        sleep 0.2
    done
    kafka_die "broker pid $pid survived SIGKILL"
}

kafka_log_tail() {
    local f
    for f in "$KAFKA_LOG_DIR/server.out" "$KAFKA_LOG_DIR/server.log"; do
        [[ -s $f ]] || continue
        echo "----- last 40 lines of $f -----" >&2
        tail -n 40 "$f" >&2
    done
}
