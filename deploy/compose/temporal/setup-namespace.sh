#!/bin/sh
# Create the payments namespace (if missing) and register the payment search attributes with
# the project's own script (deploy/temporal/register-search-attributes.sh; re-registering an
# existing attribute is a no-op on SQL visibility). Idempotent: runs on every `up`.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}"
retention="${NAMESPACE_RETENTION:-720h}"
# mutual TLS (docker-compose.yml): the CLI's own variables, passed as flags too, which every
# CLI release reads
tls=""
if [ -n "${TEMPORAL_TLS_CLIENT_CERT_PATH:-}" ]; then
  tls="--tls --tls-ca-path ${TEMPORAL_TLS_SERVER_CA_CERT_PATH:?} \
--tls-cert-path $TEMPORAL_TLS_CLIENT_CERT_PATH --tls-key-path ${TEMPORAL_TLS_CLIENT_KEY_PATH:?} \
--tls-server-name ${TEMPORAL_TLS_SERVER_NAME:?}"
fi

attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" $tls; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "temporal at $TEMPORAL_ADDRESS did not become healthy" >&2
    exit 1
  fi
  sleep 2
done

if ! temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" \
    --address "$TEMPORAL_ADDRESS" $tls >/dev/null 2>&1; then
  temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" \
    --retention "$retention" --address "$TEMPORAL_ADDRESS" $tls
fi

# a namespace is usable a moment after creation (namespace cache refresh)
attempt=0
until temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" \
    --address "$TEMPORAL_ADDRESS" $tls >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "namespace $TEMPORAL_NAMESPACE is not usable" >&2
    exit 1
  fi
  sleep 2
done

sh "${REGISTER_SCRIPT:-/deploy/temporal/register-search-attributes.sh}"
echo "namespace $TEMPORAL_NAMESPACE ready with the payment search attributes"
