#!/bin/sh
# Register the payment search attributes (DESIGN §3) on a Temporal cluster.
# The dev stack passes them to `temporal server start-dev`; a production cluster needs this once
# per namespace. Usage: TEMPORAL_ADDRESS=host:7233 TEMPORAL_NAMESPACE=payments ./register-search-attributes.sh
set -eu
address="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
# a cluster with mutual TLS: the temporal CLI's own variables, passed as flags (POSIX sh:
# the compose set-up runs it with whichever shell its image has; no path holds a space)
tls=""
if [ -n "${TEMPORAL_TLS_CLIENT_CERT_PATH:-}" ]; then
  tls="--tls --tls-ca-path ${TEMPORAL_TLS_SERVER_CA_CERT_PATH:?}"
  tls="$tls --tls-cert-path $TEMPORAL_TLS_CLIENT_CERT_PATH"
  tls="$tls --tls-key-path ${TEMPORAL_TLS_CLIENT_KEY_PATH:?}"
  tls="$tls --tls-server-name ${TEMPORAL_TLS_SERVER_NAME:?}"
fi
for attribute in PaymentStatus=Keyword PaymentRail=Keyword TenantId=Keyword CustomerId=Keyword \
                 Currency=Keyword AmountMinor=Int ReviewEscalated=Bool KycStatus=Keyword \
                 ActionReason=Keyword BatchId=Keyword; do
  temporal operator search-attribute create --address "$address" --namespace "$namespace" $tls \
    --name "${attribute%%=*}" --type "${attribute##*=}"
done
