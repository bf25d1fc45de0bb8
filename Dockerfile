# closedloop as a container: non-root (uid/gid 10001), the CLI as entrypoint, `serve` by default.
#   docker build -t closedloop .
#   docker run -d -p 127.0.0.1:8080:8080 -v closedloop-data:/data -v $PWD/config:/config:ro \
#     -v $PWD/secrets/hubspot_token:/run/secrets/hubspot_token:ro closedloop
# Layers, from the least to the most often changed: the base, the locked dependencies (rebuilt
# only when requirements/runtime.txt changes), then the project's own code (a few hundred KB).
# Builds with BuildKit or the legacy builder; PYTHON_IMAGE swaps the base (a mirror, a digest).
ARG PYTHON_IMAGE=python:3.11-slim

# --- the locked dependencies, hash-checked, in a venv of their own --------------------------
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/closedloop
COPY requirements/runtime.txt /tmp/runtime.txt
RUN /opt/closedloop/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/runtime.txt

# --- the project as a wheel, built with the locked setuptools (no resolution, no download) -----
FROM deps AS wheel
COPY pyproject.toml README.md LICENSE /src/
COPY closedloop /src/closedloop
RUN /opt/closedloop/bin/pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels /src

# --- the image --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# A fixed uid and gid, so volume and secret-file ownership can be set before the first start;
# no home directory is created, so /data holds only what closedloop writes there.
RUN groupadd --system --gid 10001 closedloop \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin closedloop \
 && mkdir -p /data /config \
 && chown 10001:10001 /data

COPY --from=deps /opt/closedloop /opt/closedloop
COPY --from=wheel /wheels /tmp/wheels
RUN /opt/closedloop/bin/pip install --no-deps --no-index --no-cache-dir --disable-pip-version-check \
      /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels

# CLOSEDLOOP_HOST/PORT: where /healthz, /readyz and /metrics listen. `serve` reads them (as
# --host/--port, over the config's schedule.health_*) and the HEALTHCHECK below probes the same port (never through an HTTP_PROXY). All interfaces here on
# purpose: a published port needs them; outside a container the server's default is loopback.
ENV PATH=/opt/closedloop/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLOSEDLOOP_HOST=0.0.0.0 \
    CLOSEDLOOP_PORT=8080
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request as u; port = os.environ.get('CLOSEDLOOP_PORT') or '8080'; sys.exit(0 if u.build_opener(u.ProxyHandler({})).open(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
# Last, so a new revision or date never invalidates the layers above (a build arg does).
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="closedloop" \
      org.opencontainers.image.description="Self-hosted closed-loop marketing attribution: GA4 sessions + CRM outcomes, attributed and written back to the CRM" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.documentation="README.md, section 'Running it in production'"
ENTRYPOINT ["closedloop"]
CMD ["serve", "--config", "/config/closedloop.yaml"]
