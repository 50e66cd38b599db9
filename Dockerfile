# The router image (minimal for now; the production stack issue completes it with the Vosk model,
# Asterisk and load tests). Build: docker build -t fourteen .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng sox && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
COPY data ./data
RUN pip install --no-cache-dir -e .
ENV FOURTEEN_DATA_DIR=/var/lib/fourteen
CMD ["sh", "-c", "fourteen db upgrade && fourteen db seed && fourteen plan"]
