# syntax=docker/dockerfile:1
# The Ferry operator image: `make image` (docker build -t ferry-operator:<version> .).
#
# The build stage installs the dependencies exactly as requirements.lock pins them (versions and
# hashes, from `pip-compile --generate-hashes`; see the lock's header), then Ferry's own
# wheel without resolving anything again. Every dependency ships a manylinux wheel, so no
# compiler is needed in either stage; the final stage copies only the virtualenv onto a
# fresh slim base and runs as a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# WHEELS: empty (the default), pip installs from the package index; else a directory of
# the build context holding every wheel (hack/image/build.sh: build/image/wheels, filled
# on the host), for a build without network. The lock's hashes are checked either way.
ARG WHEELS=

FROM ${PYTHON_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/ferry

FROM venv AS venv-wheels
ARG WHEELS
COPY ${WHEELS} /wheels
# Also what `pip wheel .` below builds Ferry's wheel with (setuptools, wheel).
ENV PIP_NO_INDEX=1 \
    PIP_FIND_LINKS=/wheels

# `venv` unless WHEELS is set.
FROM venv${WHEELS:+-wheels} AS build
# The lock first: its layer stays cached while only Ferry's code changes.
COPY requirements.lock ./
RUN /opt/ferry/bin/pip install --require-hashes --only-binary=:all: --no-deps \
      -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
# Ferry's wheel on top (--no-deps: the lock brought them), then a check that the lock
# satisfies every requirement the wheel declares.
RUN /opt/ferry/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/ferry/bin/pip install --no-deps --no-index /wheels/ferry_operator-*.whl \
 && /opt/ferry/bin/pip check \
 && /opt/ferry/bin/ferry --help > /dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ferry-operator" \
      org.opencontainers.image.description="Kubernetes operator that migrates Elasticsearch and OpenSearch clusters" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/ferry/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 ferry \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ferry
COPY --from=build /opt/ferry /opt/ferry
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Health (/healthz) and Prometheus (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["ferry"]
CMD ["run"]
