# The `cyclone` image: the engine, the server and the node agent are its commands
# (`cyclone engine`, `cyclone server`, `cyclone node`), as deploy/ runs them.
# `make images` builds the same layout (dist/images/cyclone.oci.tar) from Debian packages
# without a daemon or registry: scripts/images/README.md. Both install exactly the wheels of
# scripts/images/requirements.lock (linux/amd64: the lock pins x86_64 wheels by hash).
FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils ca-certificates python3 python3-venv \
    && python3 -m venv /venv
WORKDIR /src
COPY scripts/images/requirements.lock ./requirements.lock
ARG SITE=/out/usr/local/lib/python3.11/dist-packages
RUN /venv/bin/pip install --no-cache-dir --no-compile --no-deps --only-binary=:all: \
        --require-hashes --target "${SITE}" -r requirements.lock
COPY pyproject.toml README.md ./
COPY cyclone ./cyclone
RUN /venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheel . \
    && /venv/bin/pip install --no-cache-dir --no-compile --no-deps --target "${SITE}" /wheel/*.whl \
    && cd "${SITE}" \
    && rm -rf bin ./*.dist-info/direct_url.json ./*.dist-info/RECORD ./*.dist-info/INSTALLER \
    && find . -mindepth 2 -maxdepth 2 -type d \( -name tests -o -name test \) -prune \
        -exec rm -rf {} + \
    && find . -type f \( -name '*.so' -o -name '*.so.*' \) -exec strip --strip-unneeded {} +

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /usr/lib/python3.11/test \
        /usr/lib/x86_64-linux-gnu/gconv \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /var/lib/cyclone \
        --shell /usr/sbin/nologin cyclone \
    && mkdir -p /var/lib/cyclone \
    && chown 10001:10001 /var/lib/cyclone
COPY --from=build /out/ /
COPY scripts/images/cyclone-command /usr/local/bin/cyclone
RUN chmod 755 /usr/local/bin/cyclone \
    && python3 -m compileall -q -j 1 --invalidation-mode unchecked-hash \
        /usr/local/lib/python3.11/dist-packages
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/cyclone
USER 10001:10001
WORKDIR /var/lib/cyclone
EXPOSE 7099 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["cyclone", "healthcheck"]
ENTRYPOINT ["cyclone"]
CMD ["--help"]
