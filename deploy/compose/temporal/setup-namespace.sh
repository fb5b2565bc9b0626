#!/bin/sh
# Create the payments namespace (if missing) and register the payment search attributes with
# the project's own script (deploy/temporal/register-search-attributes.sh; re-registering an
# existing attribute is a no-op on SQL visibility). Idempotent: runs on every `up`.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}"
retention="${NAMESPACE_RETENTION:-720h}"

attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "temporal at $TEMPORAL_ADDRESS did not become healthy" >&2
    exit 1
  fi
  sleep 2
done

if ! temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" \
    --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
  temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" \
    --retention "$retention" --address "$TEMPORAL_ADDRESS"
fi

# a namespace is usable a moment after creation (namespace cache refresh)
attempt=0
until temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" \
    --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "namespace $TEMPORAL_NAMESPACE is not usable" >&2
    exit 1
  fi
  sleep 2
done

if command -v bash >/dev/null 2>&1; then
  bash /deploy/temporal/register-search-attributes.sh
else
  sh /deploy/temporal/register-search-attributes.sh
fi
echo "namespace $TEMPORAL_NAMESPACE ready with the payment search attributes"
