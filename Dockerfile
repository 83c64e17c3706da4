# Multi-stage build of the `teller` binary.
# Build: docker build -t teller .   Run: docker run -p 8080:8080 -v teller-data:/data teller

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
# Cargo checks that declared bench targets exist even when it does not build them.
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY migrations ./migrations
COPY prompts ./prompts
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data teller \
    && mkdir -p /data && chown teller /data
WORKDIR /app
COPY --from=build /src/target/release/teller /usr/local/bin/teller
COPY knowledge_base ./knowledge_base
USER teller
ENV TELLER_DATA_DIR=/data \
    TELLER_KB_DIR=/app/knowledge_base \
    TELLER_BIND=0.0.0.0:8080 \
    TELLER_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["teller"]
CMD ["serve"]
