# syntax=docker/dockerfile:1
# One image holds every partner-center binary; docker-compose.yml picks one per container.
# Protobuf compiles with protox inside the build, so the builder needs no protoc.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin partner-center --bin partner-service --bin relationship-service --bin channel-service \
       --bin event-service --bin event-relay \
    && mkdir -p /out \
    && cp target/release/partner-center target/release/partner-service target/release/relationship-service \
       target/release/channel-service target/release/event-service target/release/event-relay /out/

FROM debian:bookworm-slim AS runtime
# ca-certificates is left unpinned on purpose: it should follow bookworm's security updates, and a
# pinned version disappears from the archive at the next point release and breaks the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --create-home partnercenter
COPY --from=build /out/ /usr/local/bin/
USER 10001
WORKDIR /data
ENV LISTEN_ADDR=0.0.0.0:50051 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 50051
# The same binary answers container health probes over grpc.health.v1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["partner-center", "health", "--addr", "127.0.0.1:50051"]
CMD ["partner-service"]
