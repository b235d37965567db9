# products-manager container image.
#
# build:  docker build -t products-manager .
# run:    docker run -p 8080:8080 -v pm-data:/data products-manager
# every config key can be set with PM__SECTION__KEY env vars (see docker-compose.yml).

# ---- build stage
FROM rust:1-bookworm AS builder
WORKDIR /src
# pm-media links the system libjpeg-turbo through pkg-config (libwebp is built from source by cc)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libturbojpeg0-dev \
    && rm -rf /var/lib/apt/lists/*
# plain full-source build (no cache mounts); .dockerignore keeps target/, data/ and .git out
COPY . .
RUN cargo build --profile dist --locked --bin products-manager \
    && cp target/dist/products-manager /usr/local/bin/products-manager

# ---- runtime stage
FROM debian:bookworm-slim
# ca-certificates for tls to external services, curl for the healthcheck, libturbojpeg0 for
# product images (pm-media)
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libturbojpeg0 \
    && rm -rf /var/lib/apt/lists/*
# non-root user; /data is created here so a new named volume inherits pm's ownership
RUN groupadd --gid 10001 pm \
    && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin pm \
    && mkdir -p /app/config /data \
    && chown pm:pm /data
WORKDIR /app
COPY --from=builder /usr/local/bin/products-manager /usr/local/bin/products-manager
COPY config/default.toml /app/config/default.toml
ENV PM__SERVER__BIND=0.0.0.0:8080 \
    PM__STORAGE__DATA_DIR=/data
VOLUME /data
# numeric uid:gid so runtimes that enforce non-root (runAsNonRoot) can check it; same user as pm
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["/usr/local/bin/products-manager"]
CMD ["serve"]
