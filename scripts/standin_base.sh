#!/usr/bin/env bash
# Build standin/python:3.11-slim, a stand-in for python:3.11-slim from Debian bookworm's packages
# (python3.11 + venv), for machines that reach Debian's archive but no container registry.
# It trusts this machine's CA bundle, so pip inside builds works behind a TLS-inspecting proxy.
# Needs root, debootstrap and a running docker engine; takes a few minutes.
set -euo pipefail
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d)/rootfs
trap 'rm -rf "$(dirname "$root")"' EXIT
debootstrap --variant=minbase bookworm "$root" "$MIRROR"
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3.11-venv ca-certificates && apt-get clean'
rm -rf "$root"/var/lib/apt/lists/*
for name in python python3 python3.11; do ln -sf /usr/bin/python3.11 "$root/usr/local/bin/$name"; done
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; fi
tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - standin/python:3.11-slim
