#!/usr/bin/env bash
# Fetches the Kafka broker jars of KAFKA_VERSION (default 3.9.1; 4.x too) and their runtime dependencies
# from Maven Central into scripts/kafka/jars/<version>. Idempotent: does nothing when they are there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${KAFKA_VERSION:-3.9.1}"
out="$here/jars/$version"
if compgen -G "$out/kafka_2.13-*.jar" > /dev/null; then exit 0; fi
profile=kafka3
case "$version" in 4.*) profile=kafka4 ;; esac
mvn -q -B -f "$here/pom.xml" -P"$profile" -Dkafka.version="$version" \
  dependency:copy-dependencies -DoutputDirectory="$out"
echo "kafka $version jars fetched into $out"
