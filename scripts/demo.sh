#!/bin/sh
# make demo: start the fake provider, seed a demo model pointing at it, print a key, serve the gateway.
set -eu
PY="$VENV/bin/python"
mkdir -p .demo
"$PY" -m tests.support.fake_provider --port "$DEMO_PROVIDER_PORT" &
PROVIDER_PID=$!
trap 'kill $PROVIDER_PID 2>/dev/null || true' EXIT INT TERM
cat > .demo/policy.yaml <<POLICY
models:
  demo-model:
    litellm_model: openai/fake-demo-model
    api_base: http://127.0.0.1:$DEMO_PROVIDER_PORT/v1
    max_tokens: 256
  demo-claude:
    litellm_model: anthropic/claude-sonnet-4-5
    api_base: http://127.0.0.1:$DEMO_PROVIDER_PORT
    max_tokens: 256
aliases:
  fast: demo-model
POLICY
"$PY" manage.py import_policy .demo/policy.yaml
KEY=$("$PY" manage.py create_api_key --name "demo-$(date +%Y%m%d-%H%M%S)")
cat <<INFO

  Gateway:  http://$HOST:$PORT/v1   (admin: http://$HOST:$PORT/admin/, docs: http://$HOST:$PORT/docs)
  Key:      $KEY

  curl http://$HOST:$PORT/v1/chat/completions -H "Authorization: Bearer $KEY" \\
       -H "Content-Type: application/json" \\
       -d '{"model": "fast", "messages": [{"role": "user", "content": "Hello"}]}'

INFO
"$VENV/bin/uvicorn" llmproxy_site.asgi:application --host "$HOST" --port "$PORT"
