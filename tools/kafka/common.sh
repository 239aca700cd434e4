# shellcheck shell=bash
# Shared helpers for tools/kafka/{fetch,start,stop,run-class}. Sourced, not run.

KAFKA_TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

kafka_log() { printf '[kafka] %s\n' "$*" >&2; }
kafka_die() {
  printf '[kafka] ERROR: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '[kafka]        %s\n' "$line" >&2; done
  exit 1
}

# The pinned version is the <kafka.version> property of tools/kafka/pom.xml.
KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$KAFKA_TOOLS_DIR/pom.xml" | head -n1)"
[[ -n "$KAFKA_VERSION" ]] || kafka_die "cannot read <kafka.version> from $KAFKA_TOOLS_DIR/pom.xml" \
  "restore that file from git."

# Cache: $KAFKA_CACHE_DIR, else $DSU_CACHE_DIR/kafka, else tools/kafka/.cache (gitignored).
if [[ -z "${KAFKA_CACHE_DIR:-}" ]]; then
  if [[ -n "${DSU_CACHE_DIR:-}" ]]; then
    KAFKA_CACHE_DIR="$DSU_CACHE_DIR/kafka"
  else
    KAFKA_CACHE_DIR="$KAFKA_TOOLS_DIR/.cache"
  fi
fi
KAFKA_LIB_DIR="$KAFKA_CACHE_DIR/kafka-$KAFKA_VERSION/lib"
KAFKA_STAMP_FILE="$KAFKA_CACHE_DIR/kafka-$KAFKA_VERSION/.complete"

kafka_pom_sha() { sha256sum "$KAFKA_TOOLS_DIR/pom.xml" | cut -d' ' -f1; }

# True when the jar cache matches the current pom (so no mvn is needed).
kafka_cache_complete() {
  [[ -f "$KAFKA_STAMP_FILE" ]] || return 1
  [[ "$(cat "$KAFKA_STAMP_FILE")" == "$(kafka_pom_sha)" ]] || return 1
  local j
  for j in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-server-$KAFKA_VERSION.jar" \
           "kafka-clients-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar"; do
    [[ -f "$KAFKA_LIB_DIR/$j" ]] || return 1
  done
}

# Sets KAFKA_JAVA to a java >= 17 (JAVA_HOME first, then PATH).
kafka_find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    KAFKA_JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    KAFKA_JAVA="$(command -v java)"
  else
    kafka_die "java not found (Kafka $KAFKA_VERSION needs Java 17 or newer)." \
      "Install it: run tools/bootstrap (as root), or apt-get install openjdk-17-jre-headless, or set JAVA_HOME."
  fi
  local ver major
  ver="$("$KAFKA_JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n1)"
  major="${ver%%.*}"
  if [[ -z "$major" || ! "$major" =~ ^[0-9]+$ ]]; then
    kafka_die "cannot determine the version of $KAFKA_JAVA." "Check that '$KAFKA_JAVA -version' works."
  fi
  if (( major < 17 )); then
    kafka_die "$KAFKA_JAVA is Java $ver; Kafka $KAFKA_VERSION needs Java 17 or newer." \
      "Install openjdk-17-jre-headless (tools/bootstrap) or point JAVA_HOME at a JDK/JRE 17+."
  fi
}

# Command prefix (array) to run a Kafka main class with the cached jars and the
# quiet tools log config: "${KAFKA_TOOL_CMD[@]}" <main-class> args...
# Call kafka_find_java first.
kafka_tool_cmd() {
  KAFKA_TOOL_CMD=("$KAFKA_JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$KAFKA_TOOLS_DIR/log4j2-tools.xml"
    -cp "$KAFKA_LIB_DIR/*")
}
kafka_run_class() { kafka_tool_cmd; "${KAFKA_TOOL_CMD[@]}" "$@"; }

# Prints two distinct free TCP ports on 127.0.0.1 (python3, else node).
kafka_free_ports() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])'
  elif command -v node >/dev/null 2>&1; then
    node -e 'const net=require("net");const p=[];let n=0;const ss=[0,1].map(i=>{const s=net.createServer();s.listen(0,"127.0.0.1",()=>{p[i]=s.address().port;if(++n===2){console.log(p.join(" "));ss.forEach(x=>x.close());}});return s;});'
  else
    kafka_die "need python3 or node to pick free ports." "Install python3 (tools/bootstrap)."
  fi
}
