# joinform container image: build with `docker build -t joinform .`
# The same build as the README's `cargo build --release`, in a pinned toolchain image.
# Base images are pinned by version; to pin by content too, replace each tag with its
# digest from your registry (`docker buildx imagetools inspect rust:1.95.0-slim-bookworm`)
# and renew it when Debian publishes security updates.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# gcc builds the bundled SQLite; the slim image has it.
COPY Cargo.toml Cargo.lock build.rs schema.sql ./
COPY src ./src
COPY benches ./benches
# Built into the binary: the default configuration and the mail templates.
COPY config ./config
COPY templates ./templates
RUN cargo build --release --locked --bin joinform

FROM ${RUNTIME_IMAGE} AS runtime
# A fixed, unprivileged user; /data is its only writable place, and its own: the image
# makes this folder, not joinform's umask, and a new named volume copies its mode.
RUN groupadd --system --gid 10001 joinform \
    && useradd --system --uid 10001 --gid joinform --home-dir /nonexistent --shell /usr/sbin/nologin joinform \
    && mkdir -p /data \
    && chown joinform:joinform /data \
    && chmod 0700 /data
WORKDIR /app
COPY --from=builder /src/target/release/joinform /usr/local/bin/joinform
COPY config/joinform.toml /app/config/joinform.toml
# Everything joinform writes (database, its secret, .eml files) is under /data, so the
# container runs with a read-only root file system (`docker run --read-only`).
ENV JOINFORM_CONFIG=/app/config/joinform.toml \
    JOINFORM_SERVER__LISTEN=0.0.0.0:8080 \
    JOINFORM_ADMIN__LISTEN=0.0.0.0:8081 \
    JOINFORM_STORAGE__DATABASE=/data/joinform.db \
    JOINFORM_MAIL__FILE_DIR=/data/mail
VOLUME ["/data"]
# 8080: the public form API. 8081: exports, erasure and /metrics: publish it only on
# a private interface (`-p 127.0.0.1:8081:8081`).
EXPOSE 8080 8081
USER joinform:joinform
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["joinform", "healthcheck"]
# joinform finishes the requests in flight on SIGTERM for up to server.shutdown_timeout
# (30 s); run with `--stop-timeout 35` so the runtime's SIGKILL (10 s) does not come first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["joinform"]
CMD ["serve"]
