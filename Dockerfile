# One image for every project process; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY common common
COPY collector collector
COPY aggregator aggregator
COPY rollup rollup
COPY api api
COPY ops ops
COPY importer importer
COPY publishing publishing
COPY stack stack
RUN pip install --no-cache-dir .
COPY services.toml ./
