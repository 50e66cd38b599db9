# The router image: Python, espeak-ng/sox for prompts, and the Dutch Vosk model (fetched and verified at
# build time). Build: docker build -t fourteen .   (--build-arg VOSK_MODEL_SHA256=<hash> pins the model)
FROM python:3.11-slim
ARG VOSK_MODEL_SHA256=""
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng sox tzdata curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY scripts/fetch-vosk-model ./scripts/
RUN VOSK_MODEL_SHA256="$VOSK_MODEL_SHA256" scripts/fetch-vosk-model /opt/vosk
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
COPY data ./data
COPY grammars ./grammars
RUN pip install --no-cache-dir -e .
ENV FOURTEEN_DATA_DIR=/var/lib/fourteen \
    FOURTEEN_VOSK_MODEL=/opt/vosk/vosk-model-small-nl-0.22 \
    FOURTEEN_AGI_ADDR=0.0.0.0:4573 \
    FOURTEEN_HTTP_ADDR=0.0.0.0:8080
EXPOSE 4573 8080
CMD ["sh", "-c", "fourteen db upgrade && fourteen db seed && fourteen grammar build && exec fourteen serve"]
