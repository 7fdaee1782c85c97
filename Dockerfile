# The `cyclone` image: the engine, the server and the node agent are its commands
# (`cyclone engine`, `cyclone server`, `cyclone node`), as deploy/ runs them.
# `make images` builds the same image (dist/images/cyclone.oci.tar) from Debian packages
# without a daemon or registry: scripts/images/README.md.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY cyclone ./cyclone
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /var/lib/cyclone cyclone \
    && mkdir -p /var/lib/cyclone \
    && chown 10001:10001 /var/lib/cyclone
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/cyclone
USER 10001:10001
WORKDIR /var/lib/cyclone
EXPOSE 7099
ENTRYPOINT ["cyclone"]
CMD ["--help"]
