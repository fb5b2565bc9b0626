#!/usr/bin/env bash
# Installs the Prometheus tools the alert tests run, when they are missing:
#   promtool      (Debian package `prometheus`): `promtool check rules`, `promtool test rules`
#   prometheus-alertmanager (Debian's name for the alertmanager binary; with amtool): the
#                 test that routes a firing alert to a webhook receiver
# They are not on PyPI, so `make install` cannot bring them; `make test` calls this first so
# that a fresh machine passes. Idempotent: does nothing when both are on PATH.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || missing+=(prometheus-alertmanager)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-prometheus-tools: ${missing[*]} missing and this is not root;" \
        "run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-prometheus-tools: ${missing[*]} missing and there is no apt-get;" \
        "install promtool and alertmanager (Prometheus 2.42+, Alertmanager 0.25+) on PATH" >&2
    exit 1
fi

echo "install-prometheus-tools: installing ${missing[*]} (Debian)" >&2
export DEBIAN_FRONTEND=noninteractive
# the package lists may be absent or stale on a fresh machine
apt-get update -qq >/dev/null
# no recommends: the node exporter and friends are not needed to test rules; the packages'
# services are not wanted either (containers usually refuse them via policy-rc.d)
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null
