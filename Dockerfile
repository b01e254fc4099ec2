FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY curation curation
COPY training training
COPY serving serving
COPY data/sample data/sample
RUN pip install --no-cache-dir ".[hf]"
ENV CURATE_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["curate"]
CMD ["demo"]
