#!/usr/bin/env bash
# Installs what ferry needs to build and test, only what is missing (idempotent):
# Debian packages (compiler, CMake, Ninja, GoogleTest, clang for the fuzzer, Python venv) and a
# Python virtual environment in .venv with the PyPI packages the tests and scripts use.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config libgtest-dev nlohmann-json3-dev libutf8proc-dev libcpp-httplib-dev clang python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may have the tools from elsewhere (e.g. a pyenv Python); only install what is absent.
have() { command -v "$1" >/dev/null 2>&1; }
filtered=()
for p in "${missing[@]}"; do
    case "$p" in
        cmake) have cmake || filtered+=("$p") ;;
        ninja-build) have ninja || filtered+=("$p") ;;
        g++) have g++ || filtered+=("$p") ;;
        clang) have clang++ || filtered+=("$p") ;;
        python3) have python3 || filtered+=("$p") ;;
        python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null || filtered+=("$p") ;;
        libgtest-dev) [ -f /usr/include/gtest/gtest.h ] || filtered+=("$p") ;;
        nlohmann-json3-dev) [ -f /usr/include/nlohmann/json.hpp ] || filtered+=("$p") ;;
        libutf8proc-dev) [ -f /usr/include/utf8proc.h ] || filtered+=("$p") ;;
        libcpp-httplib-dev) [ -f /usr/include/httplib.h ] || filtered+=("$p") ;;
        pkg-config) have pkg-config || filtered+=("$p") ;;
        *) filtered+=("$p") ;;
    esac
done
if [ ${#filtered[@]} -gt 0 ]; then
    echo "install_deps: installing ${filtered[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${filtered[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "install_deps: creating .venv"
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import gguf, numpy, openai' 2>/dev/null; then
    echo "install_deps: installing Python packages into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
fi
