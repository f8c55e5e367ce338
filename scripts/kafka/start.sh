#!/usr/bin/env bash
# Runs a single-node Kafka broker in KRaft mode (broker and controller in one process) from the jars
# fetched by fetch.sh, in the foreground (exec, so killing this process stops the broker).
#   KAFKA_DIR              working dir (data, config, logs); default: a new temp dir
#   KAFKA_PORT             client listener on 127.0.0.1; default 9092
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1; default 9093
#   KAFKA_HEAP             JVM heap; default 512m
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/fetch.sh"
dir="${KAFKA_DIR:-$(mktemp -d -t streamlines-kafka-XXXXXX)}"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
mkdir -p "$dir/data"
cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller_port}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=${dir}/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
cp "$here/log4j.properties" "$dir/log4j.properties"
# Java's UUID, base64url without padding: the form `kafka-storage random-uuid` prints.
# A Kafka cluster id is 16 random bytes in URL-safe base64. One starting with '-' would read as an
# option to kafka-storage, so the first character is drawn again until it is not.
cluster_id="-"
while [ "${cluster_id#-}" != "$cluster_id" ]; do
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
done
cp=("$here/jars/*")
java_opts=(-Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir")
if [ ! -f "$dir/data/meta.properties" ]; then
  java "${java_opts[@]}" -cp "${cp[*]}" kafka.tools.StorageTool format \
    --config "$dir/server.properties" --cluster-id "$cluster_id" --ignore-formatted > "$dir/format.log"
fi
echo "kafka: starting on 127.0.0.1:${port} (controller ${controller_port}) in ${dir}"
exec java "${java_opts[@]}" -cp "${cp[*]}" kafka.Kafka "$dir/server.properties"
