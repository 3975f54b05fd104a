# fleetlens: one image for every role (ingest, detect, api, archive, simulate, load, scenario).
#   docker build -t fleetlens:0.1.0 .
#   docker run --rm fleetlens:0.1.0 --help
# The role is the command: `docker run fleetlens:0.1.0 ingest`, `... detect`, `... api`, ...
# Configuration comes from FLEETLENS_* environment variables (docs/settings.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The native decoder (native/): a Rust extension, built into an abi3 wheel (CPython >= 3.11).
FROM rust:1.95-slim-bookworm AS native
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv > /dev/null \
    && python3 -m venv /opt/maturin && /opt/maturin/bin/pip install --no-cache-dir "maturin==1.16.0"
WORKDIR /native
COPY native ./
RUN /opt/maturin/bin/maturin build --release --locked --out /wheels

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/fleetlens && /opt/fleetlens/bin/pip install "pip==26.3"
WORKDIR /src
# Dependencies first (pinned in pyproject.toml): this layer is rebuilt only when they change.
COPY pyproject.toml README.md ./
RUN python - <<'PY' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
RUN /opt/fleetlens/bin/pip install -r /tmp/requirements.txt
COPY --from=native /wheels /tmp/wheels
RUN /opt/fleetlens/bin/pip install /tmp/wheels/*.whl
COPY src ./src
RUN /opt/fleetlens/bin/pip install --no-deps . \
    && /opt/fleetlens/bin/fleetlens --help > /dev/null \
    && /opt/fleetlens/bin/python -c "from fleetlens.contract import nativepath; assert nativepath.AVAILABLE"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="fleetlens" \
      org.opencontainers.image.description="Logs, metrics and business events of a microservice fleet: ingest, detect, query, archive." \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed non-root uid/gid so volume permissions are the same on every host and in Kubernetes
# (runAsUser 10001, fsGroup 10001).
RUN groupadd --system --gid 10001 fleetlens \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/fleetlens --shell /usr/sbin/nologin fleetlens \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/fleetlens /var/lib/fleetlens/auth
COPY --from=build /opt/fleetlens /opt/fleetlens
ENV PATH=/opt/fleetlens/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLEETLENS_DATA_DIR=/var/lib/fleetlens \
    FLEETLENS_LOG_FORMAT=json \
    FLEETLENS_QUERY__HOST=0.0.0.0 \
    FLEETLENS_OBSERVE__HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/fleetlens
VOLUME ["/var/lib/fleetlens"]
# 8321: HTTP API (`api`); 9464: /metrics, /healthz, /readyz of roles without the API (`ingest`, ...).
EXPOSE 8321 9464
# fleetlens stops gracefully on Ctrl-C (finishes and acknowledges the batch in flight): send SIGINT.
STOPSIGNAL SIGINT
ENTRYPOINT ["fleetlens"]
CMD ["--help"]
