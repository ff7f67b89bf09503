# Troupe: build with the dev dependencies, run with the production ones only, as a non-root user.
#   docker build -t troupe . && docker run -p 3000:3000 troupe
# (No Docker engine runs on the machines this repo is developed on: CI checks this file's shape,
# not a build; see docs/OPERATIONS.md, "Deployment".)

FROM node:20-bookworm-slim AS build
WORKDIR /app
# python3/make/g++ for native modules (the SQLite store) when no prebuilt binary matches.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# `npm ci` runs the prepare script (build dist/ when stale), which skips here: no sources yet.
COPY scripts/build-if-stale.mjs ./scripts/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# Read at run time from beside the sources: the offline search corpus, and the Redis layer's Lua
# commands (tsc does not copy .lua files into dist/).
COPY --from=build --chown=node:node /app/api/tools/plugins/search-corpus ./api/tools/plugins/search-corpus
COPY --from=build --chown=node:node /app/api/redis/commands ./api/redis/commands
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
# Liveness needs no dependency; node's own fetch, since the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form, no npm and no shell in between: node is PID 1 and receives SIGTERM itself, which
# server.ts turns into a clean shutdown (refuse new chats, end open streams, close the store).
# Node's flags as in package.json's start script (docs/CONFIGURATION.md, "Memory and the young generation").
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=8", "dist/server.js"]
