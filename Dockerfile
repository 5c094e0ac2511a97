# sluice: build the host (which builds and embeds the first-party plugins),
# then run it on a slim base as an unprivileged user.
#
#   docker build -t sluice .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/sluice.toml:/etc/sluice/sluice.toml:ro" \
#     -e DATABASE_URL=postgres://analyst:secret@db.internal:5432/app \
#     sluice
#
# The config must hold at least one [[http.auth.keys]] entry (`sluice keys
# new`) and list the name clients use in [http] allowed_hosts.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# rust-toolchain.toml names the wasm32-wasip2 target the plugins build for.
RUN rustup target add wasm32-wasip2 \
    && cargo build --release --locked -p sluice \
    && install -m 0755 target/release/sluice /usr/local/bin/sluice

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/sluice --create-home sluice \
    && mkdir -p /etc/sluice /var/lib/sluice/plugins /var/cache/sluice \
    && chown sluice /var/cache/sluice \
    && chmod 0700 /var/cache/sluice
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice
USER sluice
# Compiled plugins are cached here; mount a volume to keep them across runs.
ENV SLUICE_CACHE_DIR=/var/cache/sluice
# The first-party plugins compiled ahead of time, so that a container starts
# without compiling (a host with another CPU recompiles them once).
RUN ["sluice", "plugins", "compile"]
EXPOSE 8080
ENTRYPOINT ["sluice"]
CMD ["serve", "--http", "0.0.0.0:8080", "--config", "/etc/sluice/sluice.toml", "--plugins", "/var/lib/sluice/plugins"]
