#!/usr/bin/env bash
# Installs what Shoal and its tests need on a Debian machine (as root): the apt packages and a
# virtualenv in .venv with the project installed. Safe to run again; does nothing that is done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(docker.io etcd-server busybox-static docker-compose iproute2 iptables docker-registry
              python3-venv python3-pip make openssl debootstrap chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing apt packages: ${missing[*]}" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/shoal ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: preparing .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi
echo "bootstrap: ready" >&2
