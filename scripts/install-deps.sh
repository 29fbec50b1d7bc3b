#!/usr/bin/env bash
# Installs the Debian packages unetpp needs to build, test, benchmark and run its examples.
# Runs as root (or through sudo when it is there). Skips apt entirely when all are present.
# OpenMP comes with g++ (libgomp); Eigen is used by the benchmarks' side-by-side comparisons.
set -euo pipefail
packages=(cmake make g++ libeigen3-dev libstb-dev catch2 libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present (${packages[*]})"
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
