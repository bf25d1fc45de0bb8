# closedloop as a container: non-root, the CLI as entrypoint.
#   docker build -t closedloop .
#   docker run --rm -v $PWD/closedloop.yaml:/config/closedloop.yaml:ro -e HUBSPOT_TOKEN closedloop run --config /config/closedloop.yaml
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
ENTRYPOINT ["closedloop"]
CMD ["--help"]
