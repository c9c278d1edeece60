# joinform container image: build with `docker build -t joinform .`
# The same build as the README's `cargo build --release`, in a pinned toolchain image.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
# gcc builds the bundled SQLite; the slim image has it.
COPY Cargo.toml Cargo.lock build.rs schema.sql ./
COPY src ./src
COPY benches ./benches
# Built into the binary: the default configuration and the mail templates.
COPY config ./config
COPY templates ./templates
RUN cargo build --release --locked --bin joinform

FROM debian:bookworm-slim AS runtime
# A fixed, unprivileged user; /data is its only writable place.
RUN groupadd --system --gid 10001 joinform \
    && useradd --system --uid 10001 --gid joinform --home-dir /nonexistent --shell /usr/sbin/nologin joinform \
    && mkdir -p /data \
    && chown joinform:joinform /data
WORKDIR /app
COPY --from=builder /src/target/release/joinform /usr/local/bin/joinform
COPY config/joinform.toml /app/config/joinform.toml
ENV JOINFORM_CONFIG=/app/config/joinform.toml \
    JOINFORM_SERVER__LISTEN=0.0.0.0:8080 \
    JOINFORM_STORAGE__DATABASE=/data/joinform.db \
    JOINFORM_MAIL__FILE_DIR=/data/mail
VOLUME ["/data"]
EXPOSE 8080
USER joinform:joinform
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["joinform", "healthcheck"]
ENTRYPOINT ["joinform"]
CMD ["serve"]
