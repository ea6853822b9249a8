#!/usr/bin/env bash
# Issue 3 figure: one customer with 5,000 workflows synced through the CLI (`--inline`) against the
# sandbox over HTTP (20 ms latency per request) into a fresh PostgreSQL database.
# Prints wall time and peak RSS of the CLI process for a first sync and for an unchanged re-sync.
set -euo pipefail
cd "$(dirname "$0")/.."
LATENCY_MS=${LATENCY_MS:-20}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DB="zws_cli5000_$$"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB" postgres
WORK=$(mktemp -d)
cleanup() {
  kill "$SANDBOX_PID" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres || true
  rm -rf "$WORK"
}
trap cleanup EXIT
uv run --frozen zuora-sandbox --port "$PORT" --tenants 1 --workflows-per-tenant 5000 \
  --seed-value 1 --latency-ms "$LATENCY_MS" --log-level warning >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/_sandbox/health" >/dev/null && break; sleep 0.2; done
CREDS=$(curl -sf "http://127.0.0.1:$PORT/_sandbox/tenants/tenant-0001")
CLIENT_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$CREDS")
SECRET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$CREDS")
export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$DB" APP_ENV=production \
  ENCRYPTION_KEYS=$(uv run --frozen python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
  ZUORA_ALLOWED_BASE_URLS="http://127.0.0.1:$PORT"
uv run --frozen zuora-sync db upgrade >/dev/null
echo "$SECRET" | uv run --frozen zuora-sync customers add --name big --base-url "http://127.0.0.1:$PORT" \
  --client-id "$CLIENT_ID" --client-secret-stdin >/dev/null
PY=.venv/bin/python
for label in first-sync unchanged-resync; do
  /usr/bin/time -f "$label: wall %e s, peak RSS %M KB" "$PY" -m zuora_sync_cli.main \
    sync-workflows --customer big --inline --force --json 2>"$WORK/time.txt" >"$WORK/out.json"
  tail -1 "$WORK/time.txt"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("   ", {k: d[k] for k in ("created","updated","deleted","unchanged","total","pages","duration_ms")})' "$WORK/out.json"
done
