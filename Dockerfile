# One image with all three binaries: darkroom-web, darkroom-worker, darkroom-queue.
FROM rust:1-bookworm AS build
WORKDIR /src
# libjpeg-turbo and libheif build from source with these; libheif links
# Debian's HEVC and AV1 codecs (scripts/lib.sh, ensure_build_tools).
RUN apt-get update && apt-get install -y --no-install-recommends cmake nasm pkg-config g++ \
        libde265-dev libaom-dev libdav1d-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# Queries are checked against the committed .sqlx/ metadata, no database needed.
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked --bins \
    && cp target/release/darkroom-web target/release/darkroom-worker target/release/darkroom-queue /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
        libde265-0 libaom3 libdav1d6 libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 darkroom
COPY --from=build /usr/local/bin/darkroom-* /usr/local/bin/
USER darkroom
EXPOSE 8080
CMD ["darkroom-web"]
