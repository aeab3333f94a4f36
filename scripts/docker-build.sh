#!/usr/bin/env bash
# Build the Strom image from this checkout: tags strom:latest and strom:<git short sha>
# (strom:<sha>-dirty when the work tree has uncommitted changes).
#
#   scripts/docker-build.sh [extra docker build args...]
#
# IMAGE=name changes the repository name (default: strom). Needs a reachable Docker
# engine with BuildKit (the default builder since Docker 23). See docs/docker.md.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-strom}

if ! command -v docker >/dev/null 2>&1; then
  echo "error: the docker command is not installed (https://docs.docker.com/get-docker/)" >&2
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "error: no Docker engine is reachable (docker info failed)." >&2
  echo "       Start the Docker daemon (or Docker Desktop), or point DOCKER_HOST /" >&2
  echo "       'docker context use' at a running engine, then run this again." >&2
  exit 1
fi
# The Dockerfile uses BuildKit cache mounts; the legacy builder cannot build it.
if ! docker buildx version >/dev/null 2>&1; then
  echo "error: docker buildx (BuildKit) is missing; install the docker-buildx-plugin" >&2
  echo "       package (Docker Desktop and docker-ce include it)." >&2
  exit 1
fi

sha=unknown
if git rev-parse --git-dir >/dev/null 2>&1; then
  sha=$(git rev-parse --short HEAD)
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    sha="$sha-dirty"
  fi
fi

echo "building $IMAGE:latest and $IMAGE:$sha"
DOCKER_BUILDKIT=1 docker build \
  --tag "$IMAGE:latest" \
  --tag "$IMAGE:$sha" \
  --label "org.opencontainers.image.revision=$sha" \
  "$@" \
  .
echo "built $IMAGE:latest and $IMAGE:$sha"
