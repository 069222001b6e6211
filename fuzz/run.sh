#!/bin/sh
# Run every libFuzzer target for SECONDS each on its committed seeds.
#
#   fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
#
# New inputs go to BUILD_DIR/corpus/<target> (the committed fuzz/corpus/<target>
# is only read), crashes to BUILD_DIR/artifacts/. Exits non-zero if any target
# finds a crash, a leak, a timeout or an out-of-memory.
set -u
B=${1:?usage: fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]}
S=${2:-60}
shift; [ $# -gt 0 ] && shift
HERE=$(cd "$(dirname "$0")" && pwd)
TARGETS=${*:-"json gguf safetensors llama2c tokenizer pack"}
mkdir -p "$B/artifacts"
status=0
for t in $TARGETS; do
  mkdir -p "$B/corpus/$t"
  log="$B/fuzz_$t.log"
  # -rss_limit_mb / -malloc_limit_mb: a reader that sizes an allocation from a
  # field instead of the file counts as a failure
  "$B/fuzz_$t" "$B/corpus/$t" "$HERE/corpus/$t" -max_total_time="$S" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$B/artifacts/${t}-" >"$log" 2>&1
  rc=$?
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -a 'cov:' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  if [ $rc -eq 0 ]; then
    echo "fuzz_$t: ok, ${execs:-?} runs in ${S}s, coverage ${cov:-?} edges"
  else
    echo "fuzz_$t: FAILED (exit $rc) after ${execs:-?} runs; see $log and $B/artifacts/"
    grep -a -m3 'ERROR\|SUMMARY\|==ERROR\|runtime error' "$log" | sed 's/^/    /'
    status=1
  fi
done
exit $status
