# The camera design note's checks: make fmt | lint | typecheck | test | up | down | logs.
# Thin wrappers over the npm scripts and Docker Compose (docs/DEPLOY-DOCKER.md).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: fmt lint typecheck test up down logs

fmt:
	npm run format

lint:
	npm run lint

typecheck:
	npm run typecheck

test:
	npm test

# Builds the image and starts Postgres, S3 (MinIO), the one-shot setup, the API and a worker.
up: .env
	$(COMPOSE) up -d --build

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs -f --tail=200

.env:
	cp .env.example .env
	@echo "Created .env from .env.example: change its secrets before exposing the stack."
