#!/usr/bin/env bash
# Register the payment search attributes (DESIGN §3) on a Temporal cluster.
# The dev stack passes them to `temporal server start-dev`; a production cluster needs this once
# per namespace. Usage: TEMPORAL_ADDRESS=host:7233 TEMPORAL_NAMESPACE=payments ./register-search-attributes.sh
set -euo pipefail
address="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
for attribute in PaymentStatus=Keyword PaymentRail=Keyword TenantId=Keyword CustomerId=Keyword \
                 Currency=Keyword AmountMinor=Int ReviewEscalated=Bool KycStatus=Keyword \
                 ActionReason=Keyword BatchId=Keyword; do
  temporal operator search-attribute create --address "$address" --namespace "$namespace" \
    --name "${attribute%%=*}" --type "${attribute##*=}"
done
