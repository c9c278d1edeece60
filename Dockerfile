# joinform container image.
#
#   docker build -t joinform .                                  # joinform alone
#   docker build --target replicated -t joinform:replicated .   # with Litestream beside it
#
# The same build as the README's `cargo build --release`, in a pinned toolchain image,
# stripped of debug info, on a runtime base with no shell and no package manager. See the
# README's "Container" section for running it, docker-compose.yml for both variants, and
# .ci/container-check for the checks it passes.
#
# Base images are pinned by version; to pin by content too, replace each tag with its
# digest from your registry (`docker buildx imagetools inspect rust:1.95.0-slim-bookworm`)
# and renew it when Debian publishes security updates. Any glibc (bookworm or newer)
# runtime works: `--build-arg RUNTIME_IMAGE=debian:bookworm-slim` if you want a shell in
# the container (the image is then about 60 MB larger). Docker's legacy builder
# (DOCKER_BUILDKIT=0) builds every stage: it needs the Litestream image even for the
# default target; BuildKit and podman build only the stages the target uses.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG LITESTREAM_IMAGE=litestream/litestream:0.5.17

# ---- the build ----------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# The release profile keeps line tables for readable backtraces on a developer's machine;
# in the image they were 108 MB of the binary's 130: build without debug info, strip.
# Set here, before the dependencies' layer, so both layers build with the same profile.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
# Crates from a vendor/ folder in the build context when there is one (made by `cargo
# vendor --locked vendor`, for a builder that cannot reach crates.io; .ci/container-check
# builds this way), else from crates.io. The wildcard makes the folder optional (COPY
# needs one source that exists: Cargo.lock) and copies its contents into /vendor.
COPY Cargo.lock vendo[r] /vendor/
RUN rm /vendor/Cargo.lock \
    && if [ -n "$(ls -A /vendor)" ]; then \
        mkdir -p .cargo \
        && printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' \
            '[source.vendored-sources]' 'directory = "/vendor"' >.cargo/config.toml; \
    else rmdir /vendor; fi
# The dependencies, in a layer of their own: built from the manifests alone, with empty
# stand-ins for joinform's own targets, so a change to joinform's sources reuses it and
# only joinform itself is compiled again.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches/load \
    && echo 'fn main() {}' >src/main.rs \
    && : >src/lib.rs \
    && echo 'fn main() {}' >benches/load/main.rs \
    && echo 'fn main() {}' >benches/writer.rs \
    && cargo build --release --locked --bin joinform \
    && rm -rf src benches
# joinform's sources. Built into the binary: the default configuration, the schema, the
# templates (askama.toml says how pages are escaped).
COPY build.rs schema.sql askama.toml ./
COPY config ./config
COPY templates ./templates
COPY benches ./benches
COPY src ./src
# COPY keeps the files' own times, which can be older than the stand-ins' build: touch
# them so cargo sees that joinform's crate changed.
RUN touch build.rs src/lib.rs src/main.rs \
    && cargo build --release --locked --bin joinform
# Made here because the runtime base has no shell: /data, empty and owner-only, and
# /backup, where config/litestream.yml puts a file replica.
RUN mkdir -m 0700 /data /backup

# ---- joinform alone (the default target) --------------------------------------------
FROM ${RUNTIME_IMAGE} AS joinform
# Give VERSION as Cargo.toml's package.version, SOURCE as the repository's URL and
# REVISION as its commit (.ci/container-check does); licenses is Cargo.toml's licence.
ARG VERSION=unknown
ARG SOURCE=
ARG REVISION=
LABEL org.opencontainers.image.title="joinform" \
      org.opencontainers.image.description="Self-hosted backend for an organisation's \"Join us\" web form" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}"
# A fixed, unprivileged uid and gid; /data is its only writable place, and its own: a new
# named volume copies this folder's owner and mode (0700). A bind mount must be given to
# uid 10001 by hand: `chown 10001:10001 DIR && chmod 0700 DIR`.
COPY --from=builder --chown=10001:10001 /data /data
COPY --from=builder /src/target/release/joinform /usr/local/bin/joinform
COPY config/joinform.toml /app/config/joinform.toml
WORKDIR /app
# These override the same keys of the configuration file, including one mounted on
# /app/config/joinform.toml: `joinform check-config` (run in the container) says where
# each value came from. Everything joinform writes (database, its keys, .eml files) is
# under /data, so the container runs with a read-only root (`docker run --read-only`).
# shutdown_timeout: docker and podman send SIGKILL 10 s after SIGTERM (`docker stop`),
# so joinform must be done before: 8 s for the requests in flight, then it commits and
# exits. To give them longer, raise both together, e.g.
# `-e JOINFORM_SERVER__SHUTDOWN_TIMEOUT=30s --stop-timeout 35`.
ENV JOINFORM_CONFIG=/app/config/joinform.toml \
    JOINFORM_SERVER__LISTEN=0.0.0.0:8080 \
    JOINFORM_ADMIN__LISTEN=0.0.0.0:8081 \
    JOINFORM_STORAGE__DATABASE=/data/joinform.db \
    JOINFORM_MAIL__FILE_DIR=/data/mail \
    JOINFORM_SERVER__SHUTDOWN_TIMEOUT=8s
VOLUME ["/data"]
# 8080 only: `docker run -P` publishes what is exposed, on every interface. The admin
# listener (8081: exports, erasure, /metrics) is published by hand, on a private
# interface only: `-p 127.0.0.1:8081:8081`.
EXPOSE 8080
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["joinform", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["joinform"]
CMD ["serve"]

# ---- joinform with Litestream replicating its database (`--target replicated`) ------
FROM ${LITESTREAM_IMAGE} AS litestream

FROM joinform AS replicated
COPY --from=litestream /usr/local/bin/litestream /usr/local/bin/litestream
# Where a file replica's volume is mounted (config/litestream.yml: `type: file`, `path:
# /backup/joinform`): owned by joinform's uid, as /data is. S3 or SFTP need no folder.
COPY --from=builder --chown=10001:10001 /backup /backup
# Litestream's configuration (which database, where the replica goes, its credentials as
# ${VARIABLES}) is mounted on /etc/litestream.yml: config/litestream.yml is the example;
# its control socket is in /tmp, so give the read-only container a tmpfs there
# (`--tmpfs /tmp`; podman's --read-only makes one itself). Litestream starts joinform,
# passes SIGTERM on to it, waits for it to finish, then uploads what is left (for at
# most its shutdown-sync-timeout) and exits with it: give `docker stop` joinform's
# shutdown_timeout plus that (`--stop-timeout 30`).
# storage.litestream: joinform leaves checkpointing the WAL to Litestream.
ENV JOINFORM_STORAGE__LITESTREAM=true
ENTRYPOINT ["litestream", "replicate", "-config", "/etc/litestream.yml", "-exec", "joinform serve"]
CMD []

# The default target: joinform alone.
FROM joinform
