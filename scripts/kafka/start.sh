#!/usr/bin/env bash
# Runs a single-node Kafka broker in KRaft mode (broker and controller in one process) from the jars
# fetched by fetch.sh, in the foreground (exec, so killing this process stops the broker).
#   KAFKA_VERSION          broker version (jars/<version>); default 3.9.1, 4.x works the same way
#   KAFKA_DIR              working dir (data, config, logs); default: a new temp dir
#   KAFKA_PORT             PLAINTEXT client listener on 127.0.0.1; default 9092
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1; default 9093
#   KAFKA_HEAP             JVM heap; default 512m
#   KAFKA_SASL_PORT        when set: a SASL_PLAINTEXT listener there, with PLAIN, SCRAM-SHA-256 and
#                          SCRAM-SHA-512 for the user KAFKA_SASL_USER / KAFKA_SASL_PASSWORD
#   KAFKA_TLS_PORT         when set: an SSL listener there, with the PEM key and certificate chain in
#                          KAFKA_TLS_KEYSTORE (one file: private key, then certificates)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${KAFKA_VERSION:-3.9.1}"
KAFKA_VERSION="$version" "$here/fetch.sh"
dir="${KAFKA_DIR:-$(mktemp -d -t streamlines-kafka-XXXXXX)}"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
listeners="PLAINTEXT://127.0.0.1:${port}"
protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
extra=""
format_extra=()
if [ -n "${KAFKA_SASL_PORT:-}" ]; then
  user="${KAFKA_SASL_USER:?KAFKA_SASL_USER is needed with KAFKA_SASL_PORT}"
  password="${KAFKA_SASL_PASSWORD:?KAFKA_SASL_PASSWORD is needed with KAFKA_SASL_PORT}"
  listeners="${listeners},SASL_PLAINTEXT://127.0.0.1:${KAFKA_SASL_PORT}"
  protocols="${protocols},SASL_PLAINTEXT:SASL_PLAINTEXT"
  extra+="sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${user}=\"${password}\";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
"
  # KRaft keeps SCRAM credentials in the metadata log: they are written when the storage is formatted.
  format_extra+=(--add-scram "SCRAM-SHA-256=[name=${user},password=${password}]"
    --add-scram "SCRAM-SHA-512=[name=${user},password=${password}]")
fi
if [ -n "${KAFKA_TLS_PORT:-}" ]; then
  keystore="${KAFKA_TLS_KEYSTORE:?KAFKA_TLS_KEYSTORE is needed with KAFKA_TLS_PORT}"
  listeners="${listeners},SSL://127.0.0.1:${KAFKA_TLS_PORT}"
  protocols="${protocols},SSL:SSL"
  extra+="listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=${keystore}
"
fi
mkdir -p "$dir/data"
cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller_port}
listeners=${listeners},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=${listeners}
controller.listener.names=CONTROLLER
listener.security.protocol.map=${protocols}
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
${extra}
PROPS
jars="$here/jars/$version"
java_opts=(-Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true
  -Dkafka.logs.dir="$dir")
case "$version" in
  4.*)
    cp "$here/log4j2.properties" "$dir/log4j2.properties"
    java_opts+=(-Dlog4j2.configurationFile="$dir/log4j2.properties") ;;
  *)
    cp "$here/log4j.properties" "$dir/log4j.properties"
    java_opts+=(-Dlog4j.configuration="file:$dir/log4j.properties") ;;
esac
# Java's UUID, base64url without padding: the form `kafka-storage random-uuid` prints.
# A Kafka cluster id is 16 random bytes in URL-safe base64. One starting with '-' would read as an
# option to kafka-storage, so the first character is drawn again until it is not.
cluster_id="-"
while [ "${cluster_id#-}" != "$cluster_id" ]; do
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
done
if [ ! -f "$dir/data/meta.properties" ]; then
  java "${java_opts[@]}" -cp "$jars/*" kafka.tools.StorageTool format \
    --config "$dir/server.properties" --cluster-id "$cluster_id" --ignore-formatted \
    ${format_extra[@]+"${format_extra[@]}"} > "$dir/format.log"
fi
echo "kafka ${version}: starting on 127.0.0.1:${port} (controller ${controller_port}) in ${dir}"
exec java "${java_opts[@]}" -cp "$jars/*" kafka.Kafka "$dir/server.properties"
