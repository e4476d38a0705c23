#!/bin/sh
# The container's entry point (README: Container image). It never migrates unless told to:
#   serve [UVICORN OPTIONS]   (the default) uvicorn with $WEB_CONCURRENCY workers on $HOST:$PORT
#   migrate [OPTIONS]         the one-off `manage.py migrate`, run once per release before the new replicas start
#   manage COMMAND [ARGS]     any manage.py command (create_api_key, usage_report, import_policy, ...)
#   anything else             run as given (a shell, say)
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

command="${1:-serve}"
[ "$#" -gt 0 ] && shift
case "$command" in
  serve)
    # The workers' metrics are files in this directory, summed by /metrics (prometheus_client's multiprocess mode):
    # start from none, or a restarted container would go on counting the last run's requests.
    PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/llmproxy-metrics}"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
    export PROMETHEUS_MULTIPROC_DIR
    set -- --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
      --loop uvloop --http httptools --no-access-log "$@"
    if [ -n "${FORWARDED_ALLOW_IPS:-}" ]; then  # the balancer's address: trust its X-Forwarded-For/-Proto
      set -- "$@" --proxy-headers --forwarded-allow-ips "$FORWARDED_ALLOW_IPS"
    fi
    # exec: uvicorn is PID 1's process itself, so `docker stop` (SIGTERM) is a graceful stop that flushes the log.
    exec "$PYTHON" -m uvicorn llmproxy_site.asgi:application "$@"
    ;;
  migrate)
    exec "$PYTHON" manage.py migrate --noinput "$@"
    ;;
  manage)
    exec "$PYTHON" manage.py "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
