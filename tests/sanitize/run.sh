#!/usr/bin/env bash
# Builds the core, plugin and command-line tests with AddressSanitizer and UndefinedBehaviorSanitizer
# in BUILD_DIR (default build-sanitize) and runs them: any report fails its test. -O1 without
# debug information: compiling is most of this stage's time. The GUI tests, the out-of-tree plugin
# build and llama.cpp's agreement run only in the ordinary build.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$src/build-sanitize}"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1" \
      -DQL_SANITIZE=address,undefined >/dev/null
labels='core|plugins|cli'
targets=$(ctest --test-dir "$build" -N -L "$labels" | awk '/Test +#/ {print $3}' | grep -v '^outoftree_plugin$')
# shellcheck disable=SC2086 # one target per word
cmake --build "$build" --target $targets quantlens-cli ql-make-fixture
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$src/tests/sanitize/lsan.supp:print_suppressions=0"
ctest --test-dir "$build" -L "$labels" -E '^outoftree_plugin$' --output-on-failure --timeout 1800
