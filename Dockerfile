FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY curation curation
COPY training training
COPY serving serving
COPY data/sample data/sample
# The extras scripts/demo.sh installs (tests/test_docker.py holds the two lists equal). Editable, as
# scripts/_venv.sh installs it: the demo reads the bundled sample next to the package, /app/data/sample.
RUN pip install --no-cache-dir -e ".[hf,filters,dedup,report]"
ENV CURATE_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["curate"]
CMD ["demo"]
