# erserve: multi-stage build.  The build stage compiles the portable
# (x86-64-v2) binaries; the runtime stage is Debian 12 slim with only the
# shared libraries, a non-root user, a health check, and volumes for the
# models and the activation store.
#   docker build -t erserve .
#   docker run -p 8080:8080 -v $PWD/models:/models:ro -v erserve-store:/store erserve \
#     --task sentiment=/models/sentiment --task ner=/models/ner
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
      libopenblas-dev libmicrohttpd-dev liblmdb-dev libjansson-dev libutf8proc-dev libsodium-dev libonig-dev \
      libmemcached-dev libdnnl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY core ./core
COPY proto ./proto
COPY server ./server
COPY tools ./tools
RUN make -j"$(nproc)" build/bin/erserve build/bin/erserve-cache build/bin/erserve-tokenize \
      build/bin/erserve-genmodel build/bin/erserve-infer

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread libmicrohttpd12 liblmdb0 \
      libjansson4 libutf8proc2 libsodium23 libonig5 libmemcached11 libdnnl2 libgomp1 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin erserve \
 && mkdir -p /models /store && chown erserve:erserve /store
COPY --from=build /src/build/bin/ /usr/local/bin/
# One OpenBLAS thread per worker is the measured default (server/SERVER.md).
# erserve starts one worker per online CPU; under a CPU quota (--cpus) set
# ERSERVE_WORKERS to the quota, since the container still sees every host CPU.
# erserve's --blas-threads overrides OPENBLAS_NUM_THREADS.  If erserve warns at start that
# OpenBLAS chose its Prescott kernels, add -e OPENBLAS_CORETYPE=Haswell
# (or SkylakeX on AVX-512 hosts) to `docker run`.
ENV OPENBLAS_NUM_THREADS=1 \
    ERSERVE_HOST=0.0.0.0 \
    ERSERVE_PORT=8080 \
    ERSERVE_STORE=/store
VOLUME ["/models", "/store"]
USER erserve
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/erserve"]
