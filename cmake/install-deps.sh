#!/usr/bin/env bash
# Installs QuantLens' build and test dependencies from Debian 12 (bookworm) packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates \
  libeigen3-dev libsentencepiece-dev libpcre2-dev libutf8proc-dev libssl-dev nlohmann-json3-dev libhdf5-dev \
  qt6-base-dev qt6-charts-dev libqt6opengl6-dev qt6-svg-dev libgl-dev libegl-dev libglu1-mesa-dev libxkbcommon-dev \
  python3-numpy python3-sentencepiece python3-torch time python3-h5py clang-format nodejs \
  clang libclang-rt-14-dev libomp-14-dev >/dev/null
echo "dependencies installed"
