# syntax=docker/dockerfile:1
# The Ferry operator image: `make image` (docker build -t ferry-operator:<version> .).
#
# Stage 1 builds the wheel and installs it with its dependencies, resolved from the
# project's own pins in pyproject.toml, into a virtualenv. Every dependency ships a
# manylinux wheel, so no compiler is needed in either stage; the final stage copies
# only the virtualenv onto a fresh slim base and runs as a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/ferry
COPY pyproject.toml README.md ./
COPY operator ./operator
# The same two steps as tests/integration/test_image.py: build the wheel, install it
# (--only-binary: fail rather than compile anything from source).
RUN /opt/ferry/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/ferry/bin/pip install --only-binary=:all: /wheels/ferry_operator-*.whl \
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
EXPOSE 8080
ENTRYPOINT ["ferry"]
CMD ["run"]
