#!/usr/bin/env bash
# CI's image step: build the Dockerfile and smoke-test the image where a container engine works.
# Where none does, print "image build skipped: <reason>" and exit 0; a build or smoke test that
# fails on a working engine exits 1.
#   CLOSEDLOOP_BASE_IMAGE  base to build on (default python:3.11-slim; falls back to the local
#                          stand-in standin/python:3.11-slim, see scripts/standin_base.sh)
#   CLOSEDLOOP_CI_DOCKERD  0: never start dockerd here (default 1: start it if installed and idle)
set -uo pipefail
cd "$(dirname "$0")/.."

skip() { echo "image build skipped: $*"; exit 0; }
command -v docker >/dev/null 2>&1 || skip "no docker client on this machine"

DOCKERD_PID=""
stop_dockerd() {
    if [[ -n "$DOCKERD_PID" ]]; then
        kill "$DOCKERD_PID" 2>/dev/null
        wait "$DOCKERD_PID" 2>/dev/null
    fi
}
trap stop_dockerd EXIT

if ! docker info >/dev/null 2>&1; then
    if [[ $(id -u) == 0 && ${CLOSEDLOOP_CI_DOCKERD:-1} == 1 ]] && command -v dockerd >/dev/null 2>&1; then
        log=$(mktemp)
        # No iptables or bridge: sandboxes often forbid them; builds use the host's network.
        dockerd --iptables=false --ip6tables=false --bridge=none >"$log" 2>&1 &
        DOCKERD_PID=$!
        for _ in $(seq 40); do docker info >/dev/null 2>&1 && break; sleep 1; done
        docker info >/dev/null 2>&1 || skip "dockerd did not start: $(tail -n 1 "$log")"
        echo "started dockerd (pid $DOCKERD_PID) for this step"
    else
        reason=$(docker info 2>&1 | grep -m1 -iE 'cannot connect|error|permission' || true)
        skip "no container engine answers (${reason:-docker info failed}) and dockerd cannot be started here"
    fi
fi

BASE=${CLOSEDLOOP_BASE_IMAGE:-python:3.11-slim}
if ! docker image inspect "$BASE" >/dev/null 2>&1 && ! timeout 120 docker pull -q "$BASE" >/dev/null 2>&1; then
    STANDIN=standin/python:3.11-slim
    if ! docker image inspect "$STANDIN" >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then
        echo "base image $BASE cannot be pulled; building the stand-in $STANDIN from Debian's packages"
        bash scripts/standin_base.sh >/dev/null 2>&1 || true
    fi
    docker image inspect "$STANDIN" >/dev/null 2>&1 \
        || skip "base image $BASE is not here and cannot be pulled, and no stand-in could be built"
    echo "base image $BASE cannot be pulled; building on the stand-in $STANDIN (Debian's Python 3.11)"
    BASE=$STANDIN
fi

# BuildKit where the buildx plugin exists, else the legacy builder (the Dockerfile suits both).
docker buildx version >/dev/null 2>&1 && export DOCKER_BUILDKIT=1 || export DOCKER_BUILDKIT=0
build_log=$(mktemp)
start=$SECONDS
if ! docker build --network host --build-arg PYTHON_IMAGE="$BASE" \
        --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        -t closedloop:ci . >"$build_log" 2>&1; then
    tail -n 30 "$build_log"
    echo "image build FAILED after $((SECONDS - start)) s"
    exit 1
fi
size=$(docker image inspect closedloop:ci --format '{{.Size}}')
echo "image closedloop:ci built in $((SECONDS - start)) s, $((size / 1000000)) MB"

# Smoke tests: the pinned user, the CLI, the labels.
ids=$(docker run --rm --network none --entrypoint id closedloop:ci)
[[ "$ids" == uid=10001\(closedloop\)\ gid=10001\(closedloop\)* ]] || { echo "image runs as '$ids', not uid/gid 10001"; exit 1; }
docker run --rm --network none closedloop:ci --help >/dev/null || { echo "closedloop --help fails in the image"; exit 1; }
revision=$(docker image inspect closedloop:ci --format '{{index .Config.Labels "org.opencontainers.image.revision"}}')
echo "image smoke test passed: runs as uid/gid 10001, closedloop --help works, revision label $revision"
