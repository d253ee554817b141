# Akamon: production image. Node 24 runs the TypeScript sources directly (type stripping).
FROM node:24-slim

ENV NODE_ENV=production \
    AKAMON_ENV=production \
    AKAMON_LISTEN_HOST=0.0.0.0 \
    AKAMON_DATA_DIR=/var/lib/akamon \
    PORT=3000 \
    TZ=UTC

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY migrations ./migrations
COPY views ./views
COPY bin ./bin

RUN mkdir -p /var/lib/akamon /app/.compile-cache && chown node:node /var/lib/akamon /app/.compile-cache

# Node's compile cache, filled here by the user and with the node flags that run the server (the
# cache is kept per user id): with every module already stripped of its types, the server never
# loads the TypeScript stripper (about 10 MiB less RSS) and gets ready about a quarter sooner. The
# migrations are imported one by one, then the libraries the server loads only after ready
# (src/shared/lazy-module.ts); main.ts is started without an issuer on purpose, so it loads its
# whole module graph and stops at the configuration check (exit 2, which a test holds).
# Afterwards the cache belongs to root: the server may read it but never plant code in it.
ENV NODE_COMPILE_CACHE=/app/.compile-cache
USER node
RUN node --max-semi-space-size=4 --max-old-space-size=512 --liftoff-only --input-type=module -e "import fs from 'node:fs'; for (const f of fs.globSync('migrations/*.ts')) await import('./' + f); await import('./src/deps.ts'); await import('./src/app.ts'); (await import('./src/shared/lazy-module.ts')).loadLazyModules();" \
 && { timeout 120 node --max-semi-space-size=4 --max-old-space-size=512 --liftoff-only src/main.ts 2>/tmp/warm.err; code=$?; \
      [ "$code" -eq 2 ] || { echo "compile-cache warm-up: expected exit 2, got $code"; cat /tmp/warm.err; exit 1; }; }
USER root
RUN chown -R root:root /app/.compile-cache && chmod -R go-w /app/.compile-cache
USER node
VOLUME ["/var/lib/akamon"]
EXPOSE 3000
# As `npm start` runs it (package.json): one malloc arena, or each hashing thread keeps its own
# ~20 MiB argon2 block; small young-generation semi-spaces; and an old-generation limit. Without
# a limit V8 sizes its heap from the machine's memory and lets garbage pile up to about 130 MiB
# although at most about 40 MiB is live under the benchmark's login storm. 512 MiB keeps the
# peak RSS near 165 MiB with twelve times the live heap in reserve; 256 MiB kept it as low but
# made V8 collect so eagerly that refresh grants lost 30%. Together: from about 410 MiB to under
# 200 MiB, with no measurable loss of throughput. --liftoff-only keeps WebAssembly on V8's baseline
# compiler: with the embedded database, optimising PGlite's parser function alone took about 600 MiB
# for some seconds after start (peak RSS near 900 MiB); without it the peak stays near 250 MiB.
# On Postgres it only touches undici's HTTP parser. A Node whose V8 lacks the flag refuses to start.
ENV MALLOC_ARENA_MAX=1

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

CMD ["node", "--max-semi-space-size=4", "--max-old-space-size=512", "--liftoff-only", "src/main.ts"]
