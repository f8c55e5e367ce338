#!/usr/bin/env bash
# Runs a single Apache Cassandra node from the jars fetched by fetch.sh, in the foreground (exec, so
# killing this process stops the node). Meant for tests: one node, loopback only, small heap.
#   CASSANDRA_DIR           working dir (data, config, logs); default: a new temp dir
#   CASSANDRA_PORT          CQL native transport port on 127.0.0.1; default 9042
#   CASSANDRA_STORAGE_PORT  internode port on 127.0.0.1; default 7000
#   CASSANDRA_HEAP          JVM heap; default 512m
# The log goes to $CASSANDRA_DIR/system.log; "Starting listening for CQL clients" means it serves.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/fetch.sh"
dir="${CASSANDRA_DIR:-$(mktemp -d -t streamlines-cassandra-XXXXXX)}"
port="${CASSANDRA_PORT:-9042}"
storage_port="${CASSANDRA_STORAGE_PORT:-7000}"
heap="${CASSANDRA_HEAP:-512m}"
mkdir -p "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/cdc_raw"
cat > "$dir/cassandra.yaml" <<YAML
cluster_name: streamlines-test
num_tokens: 16
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories: [${dir}/data]
commitlog_directory: ${dir}/commitlog
saved_caches_directory: ${dir}/saved_caches
hints_directory: ${dir}/hints
cdc_raw_directory: ${dir}/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:${storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: ${storage_port}
native_transport_port: ${port}
start_native_transport: true
endpoint_snitch: SimpleSnitch
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
memtable_allocation_type: heap_buffers
YAML
cat > "$dir/logback.xml" <<XML
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${dir}/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
XML
# The --add-exports/--add-opens flags are those of Cassandra's own conf/jvm17-server.options.
java_opts=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -Xss512k -Djava.awt.headless=true
  -Djdk.attach.allowAttachSelf=true -Dio.netty.tryReflectionSetAccessible=true
  -Dcassandra.config="file://$dir/cassandra.yaml" -Dlogback.configurationFile="$dir/logback.xml"
  -Dcassandra.storagedir="$dir" -Dcassandra.logdir="$dir" -Dcassandra-foreground=yes
  -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=0
  -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.disable_auth_caches_remote_configuration=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
  --add-exports java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.math=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.net=ALL-UNNAMED)
echo "cassandra: starting on 127.0.0.1:${port} (storage ${storage_port}) in ${dir}"
exec java "${java_opts[@]}" -cp "$here/jars/*" org.apache.cassandra.service.CassandraDaemon
