#!/bin/sh
# (Re)write the committed seed corpora fuzz/corpus/<target>/ with make_seeds
# (built by fuzz/CMakeLists.txt). The seeds are test inputs: commit them.
#
#   fuzz/make_corpus.sh [BUILD_DIR]        (default build/fuzz)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
B=${1:-$ROOT/build/fuzz}
if [ ! -x "$B/make_seeds" ]; then
  CC=clang cmake -S "$HERE" -B "$B" >/dev/null
  cmake --build "$B" -j2 --target make_seeds
fi
TOK=$ROOT/models/stories260K/tok512.bin
[ -f "$TOK" ] || TOK=/work/shared/models/stories260K/tok512.bin
rm -rf "$HERE/corpus"
mkdir -p "$HERE/corpus"
if [ -f "$TOK" ]; then "$B/make_seeds" "$HERE/corpus" "$TOK"; else "$B/make_seeds" "$HERE/corpus"; fi
find "$HERE/corpus" -type f | sort | while read -r f; do printf '%8d  %s\n' "$(wc -c <"$f")" "${f#"$ROOT"/}"; done
