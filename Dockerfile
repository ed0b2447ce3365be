# idshare container image (see docs/operations.md, "Container image").
#   docker build -t idshare .
#   docker run -p 8080:8080 -v idshare-data:/data \
#     -v /secure/place/master.key:/run/secrets/idshare-master-key:ro idshare
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p idshare \
    && install -m 0755 target/release/idshare /usr/local/bin/idshare

FROM debian:bookworm-slim
# CA certificates for outbound HTTPS (webhooks, workflow requests, providers).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin idshare \
    && install -d -o idshare -g idshare -m 0700 /data
COPY --from=build /usr/local/bin/idshare /usr/local/bin/idshare
COPY LICENSE NOTICE /usr/share/doc/idshare/
USER idshare
VOLUME /data
ENV IDSHARE_DATA_DIR=/data \
    IDSHARE_LISTEN=0.0.0.0:8080 \
    IDSHARE_MASTER_KEY_FILE=/run/secrets/idshare-master-key
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/idshare"]
CMD ["serve", "--log-format", "json"]
