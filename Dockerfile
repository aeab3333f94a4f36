# syntax=docker/dockerfile:1
#
# Strom broker image. Build with scripts/docker-build.sh (tags strom:latest and
# strom:<git short sha>) or `docker build -t strom:latest .`; needs BuildKit (the
# default builder since Docker 23) for the cache mounts. See docs/docker.md.
#
# Default command: a single node, Kafka on 0.0.0.0:9092, data in the /data volume.
# For a three-node cluster see docker-compose.yml.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build ------------------------------------------------------------------
# The workspace is edition 2024 (rust-version 1.85); rust:1 is the current stable.
# rust:1-bookworm already carries gcc, make and the libc headers that zstd-sys
# (built by the cc crate) needs; raft-proto ships generated code, so no protoc.
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# Registry, git and target caches survive between builds (BuildKit cache mounts);
# the binary is copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p strom \
 && install -D -m 0755 target/release/strom /out/strom

# --- runtime ----------------------------------------------------------------
# The binary links only libc, libm and libgcc_s, all in bookworm-slim.
FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 strom \
 && useradd --system --uid 10001 --gid strom --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin strom \
 && mkdir -p /data \
 && chown strom:strom /data
COPY --from=build /out/strom /usr/local/bin/strom

# Defaults that suit a container; flags (as in CMD or docker-compose.yml) win over
# these STROM_* variables. Metrics on all interfaces so `-p 9644:9644` works; the
# advertised address suits `docker run -p 9092:9092` with clients on the host.
ENV STROM_LISTEN=0.0.0.0:9092 \
    STROM_DATA_DIR=/data \
    STROM_METRICS_LISTEN=0.0.0.0:9644 \
    STROM_ADVERTISED_LISTENER=localhost:9092

# Numeric user so runAsNonRoot-style checks can verify it.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]

# 9092 Kafka, 19092 Raft peers, 9644 metrics (/metrics, /healthz, /readyz).
EXPOSE 9092 19092 9644

# The slim image has neither curl nor wget; bash's /dev/tcp speaks enough HTTP.
# /readyz answers 200 once the broker has loaded its logs and (in a cluster) joined
# a majority. Assumes the metrics endpoint on port 9644 (the default above).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9644 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]

# strom handles SIGTERM itself (a clean shutdown), so it can run as PID 1.
ENTRYPOINT ["strom"]
CMD ["serve", "--listen", "0.0.0.0:9092", "--data-dir", "/data"]
