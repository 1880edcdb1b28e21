# The Mediary image: one image for `mediary serve`, `mediary worker` and one-off admin commands
# (`docker run --rm IMAGE migrate`, `… storage setup`, `… devices create NAME`). See docs/DEPLOY-DOCKER.md.
#
#   docker build -t mediary .
#   docker build --build-arg BASE=mediary-base:bookworm-node20 -t mediary .   (a locally made base:
#                                                      deploy/docker/base-image.sh, no registry needed)
#
# BASE must be Debian bookworm with Node.js 20 and npm on PATH (node:20-bookworm-slim is).
ARG BASE=node:20-bookworm-slim

# ---- build: every dependency; `npm ci` runs `prepare` = `npm run build` (the SDK bundle, the web
# app and the server compiled to lib/), then the dev dependencies go ----
FROM ${BASE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json tsconfig.json tsconfig.client.json tsconfig.build.json tsconfig.web.json ./
COPY scripts/build-server.mjs scripts/build-web.mjs ./scripts/
COPY bin ./bin
COPY src ./src
COPY proto ./proto
# Install scripts run (embedded-postgres links its libraries; `prepare` builds dist/ and lib/).
# The runtime has Debian's ffmpeg: the npm-shipped static builds (~150 MB) are removed.
RUN npm ci --no-progress \
  && test -f lib/.build-stamp && test -f dist/web/app/index.html \
  && npm prune --omit=dev --ignore-scripts \
  && rm -rf node_modules/@ffmpeg-installer/*-* node_modules/@ffprobe-installer/*-* \
  && npm cache clean --force

# ---- runtime: Node 20 + Debian's ffmpeg and libheif, no dev dependencies, non-root ----
FROM ${BASE} AS runtime
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg libheif-examples tini ca-certificates \
  && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
  && groupadd --system --gid 10001 mediary \
  && useradd --system --uid 10001 --gid mediary --home-dir /data --shell /usr/sbin/nologin mediary \
  && mkdir -p /data && chown mediary:mediary /data
WORKDIR /app
# Owned by root, read-only for the service: only /data (and the temp dir) are writable.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
# The compiled server (lib/) runs; no src/ in the image: bin/mediary.mjs would take a src/ newer
# than the build for a checkout being edited and run it through tsx, which is not installed here.
COPY --from=build /app/bin ./bin
COPY --from=build /app/proto ./proto
COPY --from=build /app/dist ./dist
COPY --from=build /app/lib ./lib
ENV NODE_ENV=production \
  DATA_DIR=/data \
  HOST=0.0.0.0 \
  PORT=8080
USER mediary
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tini is PID 1: it forwards SIGTERM/SIGINT to mediary (graceful shutdown) and reaps ffmpeg children.
# --initial-old-space-size: no full GC per ~20 MiB of upload body (docs/ARCHITECTURE.md, "V8's
# old-generation floor"); Node refuses it in NODE_OPTIONS, so it is here.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--initial-old-space-size=128", "/app/bin/mediary.mjs"]
CMD ["serve"]
