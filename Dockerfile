# Timbre: build on Debian bookworm, run on bookworm-slim as a non-root user.
#   docker build -t timbre .
#   docker run -v timbre-data:/data timbre timbre-train --data /data/spotify_tracks_114k.csv.gz --db /data/timbre.db
#   docker run -p 8080:8080 -v timbre-data:/data:ro timbre
# The trainer writes /data/timbre.db and the immutable snapshots /data/timbre.snapshots/, which
# the server reads (read-only; it writes nothing).
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
RUN BUILD_DIR=/src/build PREFIX=/opt/timbre bash deploy/build.sh

FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libmicrohttpd12 libcjson1 libsqlite3-0 libopenblas0 zlib1g libsodium23 libgomp1 libstdc++6 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin timbre \
 && mkdir -p /data && chown timbre /data
COPY --from=build /opt/timbre/bin/ /usr/local/bin/
USER timbre
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["timbre-serve", "--db", "/data/timbre.snapshots", "--listen", "0.0.0.0:8080", "--watch", "30", "--sched-slice-us", "100"]
