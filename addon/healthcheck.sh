#!/bin/sh
# The image's HEALTHCHECK: healthy while facegate answers GET /health on its port with status "ok" (every
# camera streaming or starting); unhealthy when it does not answer or says "degraded" (a camera is gone).
# The port comes from the effective options addon/run.sh wrote (8099, the ingress port, unless changed).
# Overridable for tests: FACEGATE_RUNTIME_DIR.
effective="${FACEGATE_RUNTIME_DIR:-/run/facegate}/options.json"
port="$(jq -r '.http.port // 8099' "$effective" 2>/dev/null || true)"
[ -n "$port" ] || port=8099
status="$(curl -fsS --max-time 5 "http://127.0.0.1:$port/health" | jq -r '.status' 2>/dev/null || true)"
if [ "$status" = "ok" ]; then
  echo "healthy"
  exit 0
fi
echo "unhealthy: /health on port $port says '${status:-no answer}'"
exit 1
