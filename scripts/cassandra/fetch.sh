#!/usr/bin/env bash
# Fetches the Apache Cassandra jars (version in pom.xml) and their runtime dependencies from Maven
# Central into scripts/cassandra/jars. Idempotent: does nothing when the jars are already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if compgen -G "$here/jars/cassandra-all-*.jar" > /dev/null; then exit 0; fi
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$here/jars"
echo "cassandra jars fetched into $here/jars"
