# nascost server image: multi-stage, slim Python 3.11, non-root, gRPC health check.
# Build: docker build -t nascost .    Run: docker run -p 50051:50051 -v nascost-data:/data nascost

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY server ./server
COPY client ./client
COPY predictors ./predictors
COPY measurements ./measurements
# Same install command as `make install-server`.
RUN python -m pip install --no-cache-dir --prefix=/install ".[server]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 nascost && mkdir -p /data && chown nascost /data
COPY --from=build /install /usr/local
USER nascost
ENV NASCOST_DATA_DIR=/data PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 50051
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["nascost", "health", "--server", "127.0.0.1:50051"]
ENTRYPOINT ["nascost"]
CMD ["serve", "--host", "0.0.0.0", "--port", "50051", "--data-dir", "/data"]
