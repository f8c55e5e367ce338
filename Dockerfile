# syntax=docker/dockerfile:1
# Streamlines, one image for every role: `streamlines ingest | process | serve | run`.
#   docker build -t streamlines .
#   docker run --rm streamlines --version
# Stages: `web` builds the dashboard with the dev tools, `deps` installs the production dependencies
# only (no dashboard build there: scripts/prepare-web.mjs skips without vite), and the runtime stage
# copies both beside the sources. Node runs the TypeScript sources directly (type stripping).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS web
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/prepare-web.mjs scripts/
# The npm package "node" (the Node 24 a checkout brings) is not needed in an image that has Node 24.
RUN npm install --no-audit --no-fund --ignore-scripts
COPY web ./web
RUN npm run build:web

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/prepare-web.mjs scripts/
RUN npm install --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY config ./config
COPY --from=web /app/web/dist ./web/dist
# The data dir (ingest's disk buffer, the embedded log and store) belongs to the unprivileged user.
RUN mkdir -p /data /etc/streamlines && chown node:node /data
VOLUME ["/data"]
# The image's unprivileged "node" user, by number so Kubernetes can check runAsNonRoot.
USER 1000:1000
EXPOSE 8080
# Every role answers /health on --port (the compose file and the chart give each --port 8080).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=16", "bin/streamlines.js"]
CMD ["run", "--config", "config/default.yaml", "--data-dir", "/data", "--host", "0.0.0.0", "--port", "8080"]
