#!/usr/bin/env bash
# Runs a command beside a fresh moto server on a free loopback port, and stops the server after,
# whatever the command's outcome. The command sees AWS_ENDPOINT_URL and dummy credentials.
# Usage: tests/with-moto.sh COMMAND [ARGS...]
set -euo pipefail
py="${VENV:-.venv}/bin/python"
[ -x "$py" ] || { echo "with-moto: $py missing; run 'make venv'" >&2; exit 2; }
mkdir -p target
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Started directly (not through a shim) so $! is the server itself.
# moto's request recorder (used by a test that counts the calls of a fleet) writes here.
export MOTO_RECORDER_FILEPATH="$PWD/target/moto-recording-$port.jsonl"
"$py" -m moto.server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
"$py" - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(300):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("moto did not answer within 30 s; see target/moto.log")
PY
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
echo "with-moto: moto on $AWS_ENDPOINT_URL (pid $moto_pid)"
"$@"
