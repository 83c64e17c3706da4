# Multi-stage build of the `teller` binary.
# Build: docker build -t teller .   Run: docker run -p 8080:8080 -v teller-data:/data teller
# (compose.yaml runs it with Qdrant and PostgreSQL; see docs/operations.md.)

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
# Cargo checks that declared bench targets exist even when it does not build them.
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin teller \
    && rm -rf src
# Everything the binary builds in: the SQL migrations (sqlx::migrate!), the prompt
# templates, the fitted screen and answerability models, and the console's and widget's
# pages, scripts and styles (include_str!).
COPY migrations ./migrations
COPY prompts ./prompts
COPY models ./models
COPY assets ./assets
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin teller

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data teller \
    && mkdir -p /data /checkpoints && chown teller /data /checkpoints
WORKDIR /app
COPY --from=build /src/target/release/teller /usr/local/bin/teller
# Read at run time: the sample knowledge base `serve` ingests into an empty index.
COPY knowledge_base ./knowledge_base
USER teller
ENV TELLER_DATA_DIR=/data \
    TELLER_KB_DIR=/app/knowledge_base \
    TELLER_BIND=0.0.0.0:8080 \
    TELLER_LOG_FORMAT=json
EXPOSE 8080
# /data: the Qdrant Edge shard and SQLite file of the embedded defaults, and the audit
# spool. /checkpoints: for TELLER_CHECKPOINT_FILE, ideally other storage (compose.yaml).
VOLUME ["/data"]
# No curl in the image: bash speaks the one HTTP request. /healthz is the process; whether
# the stores answer is /readyz, for the load balancer (compose.yaml checks it).
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["teller"]
CMD ["serve"]
