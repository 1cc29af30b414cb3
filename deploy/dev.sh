#!/usr/bin/env bash
# The README's two commands:
#   ./deploy/dev.sh demo   install what is needed, build, and run the demo on local defaults
#   ./deploy/dev.sh test   install what is needed, build, and pass every test:
#                          unit + integration (ctest), the unit tests again under ASan/UBSan,
#                          and a short libFuzzer run of every fuzz target
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc)

build() { # build DIR [cmake args...]
    local dir=$1; shift
    cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGSHIP_TESTS=ON "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS" >/dev/null
}

case "${1:-}" in
demo)
    ./deploy/setup.sh
    build build
    exec ./deploy/demo.sh "$ROOT/build/bin"
    ;;
test)
    ./deploy/setup.sh
    echo "== build (-Wall -Wextra -Werror)"
    build build
    echo "== unit and integration tests"
    (cd build && ctest --output-on-failure --timeout 900)
    echo "== unit tests under ASan/UBSan"
    build build-asan -DPGSHIP_SANITIZE=ON
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest -L unit --output-on-failure)
    echo "== fuzz targets (libFuzzer, ${FUZZ_SECONDS:=6} s each)"
    CC=clang CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -g" \
        build build-fuzz -DPGSHIP_FUZZ=ON -DPGSHIP_SANITIZE=OFF
    fuzzed=0
    for t in build-fuzz/bin/*_fuzz; do
        name=$(basename "$t" _fuzz)
        corpus=$(mktemp -d)
        cp -r "tests/fuzz/corpus/$name/." "$corpus/" 2>/dev/null || true
        "$t" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 "$corpus" 2>"build-fuzz/$name.log" || {
            echo "fuzz target $name found a failure:"; tail -40 "build-fuzz/$name.log"; exit 1; }
        echo "fuzz $name: $(grep -E '^#[0-9]+' "build-fuzz/$name.log" | tail -1 | cut -c1-80)"
        rm -rf "$corpus"
        fuzzed=$((fuzzed + 1))
    done
    [ "$fuzzed" -gt 0 ] || { echo "no fuzz target was built"; exit 1; }
    echo "all tests passed"
    ;;
*)
    echo "usage: deploy/dev.sh demo|test" >&2
    exit 2
    ;;
esac
