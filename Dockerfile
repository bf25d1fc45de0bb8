# closedloop as a container: non-root, the CLI as entrypoint, `serve` (the schedule) by default.
#   docker build -t closedloop .
#   docker run -d -p 8080:8080 -v $PWD/config:/config:ro -v closedloop-data:/data -e HUBSPOT_TOKEN closedloop
#   docker run --rm -v $PWD/config:/config:ro -e HUBSPOT_TOKEN closedloop run --config /config/closedloop.yaml
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY closedloop ./closedloop
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /data --create-home closedloop
COPY --from=build /install /usr/local
USER closedloop
WORKDIR /data
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"
ENTRYPOINT ["closedloop"]
CMD ["serve", "--config", "/config/closedloop.yaml"]
