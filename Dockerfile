# syntax=docker/dockerfile:1
# Switchyard container image. Build: docker build -t switchyard:0.1.0 .
# The config and the TLS pair are mounted at run time (see compose.yaml,
# deploy/kubernetes/ and the README's "Deploying"); the image carries the
# shipped deploy/switchyard.yaml as a default, never a key.

# Build: every dependency, the dashboard and the TypeScript compiled to dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Production dependencies only (none has an install script to run).
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# A user of its own, numeric below, so Kubernetes' runAsNonRoot can verify it.
# The certs folder is its own so that a fresh named volume mounted there
# (compose.yaml's certs service) takes that ownership.
RUN groupadd --system --gid 10001 switchyard \
  && useradd --system --uid 10001 --gid switchyard --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin switchyard \
  && mkdir -p /etc/switchyard/certs \
  && chown switchyard:switchyard /etc/switchyard/certs
# package.json: the CLI finds its root (and version) by it.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/dashboard ./dist/dashboard
COPY config ./config
COPY deploy/switchyard.yaml /etc/switchyard/switchyard.yaml
USER 10001:10001
# https, http and the admin API of deploy/switchyard.yaml.
EXPOSE 8443 8080 9901
# SIGTERM drains for timeouts.drain: give `docker stop` longer (-t, compose's stop_grace_period).
STOPSIGNAL SIGTERM
# No curl in a slim image: Node's fetch. /healthz needs no token.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz', { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["start", "/etc/switchyard/switchyard.yaml"]
