# One image with all three binaries: darkroom-web, darkroom-worker, darkroom-queue.
FROM rust:1-bookworm AS build
WORKDIR /src
# libjpeg-turbo (the worker's scaled JPEG decoder) builds from source with these.
RUN apt-get update && apt-get install -y --no-install-recommends cmake nasm \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# Queries are checked against the committed .sqlx/ metadata, no database needed.
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked --bins \
    && cp target/release/darkroom-web target/release/darkroom-worker target/release/darkroom-queue /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 darkroom
COPY --from=build /usr/local/bin/darkroom-* /usr/local/bin/
USER darkroom
EXPOSE 8080
CMD ["darkroom-web"]
