# The code location (dagster api grpc; also the image of each run worker K8sRunLauncher starts) and the scoring
# API (govern serve), from the locked dependency set. Build: docker build -t governance-assets:VERSION .
# Run as the code location:  dagster api grpc --module-name definitions --attribute defs
#                            --host 0.0.0.0 --port 4266
# Run as the scoring API:    govern serve --host 0.0.0.0 --port 8000   (probes: /healthz liveness, /readyz readiness)
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    GOVERN_HOME=/var/lib/govern \
    GOVERN_CONFIG=/opt/governance/governance.yaml \
    MLFLOW_DISABLE_TELEMETRY=true \
    DAGSTER_DISABLE_TELEMETRY=1 \
    DVC_NO_ANALYTICS=1 \
    DO_NOT_TRACK=1

WORKDIR /opt/governance
COPY requirements.lock pyproject.toml ./
RUN pip install --no-deps -r requirements.lock

COPY governance ./governance
COPY governance_assets ./governance_assets
COPY jobs ./jobs
COPY sensors ./sensors
COPY resources ./resources
COPY programs ./programs
COPY definitions.py speedups.py ./
COPY policies ./policies
COPY governance.yaml workspace.yaml README.md ./
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /var/lib/govern govern \
    && mkdir -p /var/lib/govern /opt/dagster/home \
    && chown govern /var/lib/govern /opt/dagster/home

USER 10001
EXPOSE 4266 8000
CMD ["dagster", "api", "grpc", "--module-name", "definitions", "--attribute", "defs", "--host", "0.0.0.0", "--port", "4266"]
