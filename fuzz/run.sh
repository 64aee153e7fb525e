#!/usr/bin/env bash
# fuzz/run.sh [SECONDS]: builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs
# each for SECONDS (default 60) over a copy of its seed corpus. Prints, per target, the executions,
# execs/s and libFuzzer's coverage figure ("cov:" = edges reached); exits non-zero if any target
# found a crash, a sanitizer report, a timeout or a failed property (see fuzz/README.md for how to
# reproduce one from the saved input).
#
# The committed corpus (fuzz/corpus/<target>) is only read: libFuzzer writes new inputs into the
# first corpus directory, a temporary one. Inputs that fail are kept in
# $BUILD/fuzz-artifacts/<target>/. Environment: EVROUTE_FUZZ_BUILD_DIR (default build-fuzz),
# EVROUTE_FUZZ_TIMEOUT (seconds one input may take, default 10; more on a loaded machine: the
# timeout is wall-clock), CMAKE_CXX_COMPILER_LAUNCHER (ccache is used when it is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "usage: fuzz/run.sh [SECONDS per target]" >&2; exit 2; }
build=${EVROUTE_FUZZ_BUILD_DIR:-build-fuzz}

# clang and libFuzzer's runtime (Debian's): installed if missing.
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1; then
  echo "installing clang and libclang-rt-dev (libFuzzer)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq clang libclang-rt-dev >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq clang libclang-rt-dev >/dev/null; }
fi
if [[ -z ${CMAKE_CXX_COMPILER_LAUNCHER:-} ]] && command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
fi

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEVROUTE_FUZZ=ON -DEVROUTE_BUILD_TESTS=OFF -DEVROUTE_BUILD_BENCH=OFF -DEVROUTE_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz

# target  max_len  dictionary
targets=(
  "fuzz_ingest 262144 fuzz/json.dict"
  "fuzz_cloudevents_in 262144 fuzz/json.dict"
  "fuzz_cloudevents_out 262144 fuzz/json.dict"
  "fuzz_config 65536 fuzz/yaml.dict"
  "fuzz_disk_log 65536 -"
  "fuzz_retry_after 256 -"
  "fuzz_nats_event 4096 -"
)

corpus_sum() { find fuzz/corpus -type f -print0 | sort -z | xargs -0 sha1sum | sha1sum; }
before=$(corpus_sum)
shm=/tmp
[[ -d /dev/shm && -w /dev/shm ]] && shm=/dev/shm
work=$(mktemp -d "$shm/evroute-fuzz-run-XXXXXX")
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
printf '\n%-22s %10s %10s %8s %7s  %s\n' target execs execs/s cov corpus result
for line in "${targets[@]}"; do
  read -r name max_len dict <<<"$line"
  artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$work/$name/corpus" "$work/$name/tmp" "$artifacts"
  args=(-max_total_time="$seconds" -max_len="$max_len" -timeout="${EVROUTE_FUZZ_TIMEOUT:-10}" -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [[ $dict != - ]] && args+=(-dict="$dict")
  log="$work/$name.log"
  rc=0
  EVROUTE_FUZZ_TMP="$work/$name/tmp" "$build/fuzz/$name" "${args[@]}" "$work/$name/corpus" \
    "fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  # The last status line ("#N DONE cov: C ft: F corp: K/S ...") and the final stats.
  status=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$status")
  corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$status")
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log")
  result=ok
  if (( rc != 0 )); then
    result="FAILED (exit $rc)"
    failed+=("$name")
  fi
  printf '%-22s %10s %10s %8s %7s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${corp:-?}" "$result"
  if (( rc != 0 )); then
    echo "---- $name: what it found (full log: $artifacts/log)"
    cp "$log" "$artifacts/log"
    grep -E 'PROPERTY FAILED|^  value:|terminate called|what\(\):|ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|^SUMMARY:|ERROR: libFuzzer: (timeout|out-of-memory)' \
      "$log" | head -6 | cut -c1-400 || tail -20 "$log"
    grep -E 'Test unit written to' "$log" | sed 's/^/    /' || true
    echo "    reproduce: $build/fuzz/$name <that file>"
    echo "----"
  fi
done

if [[ $(corpus_sum) != "$before" ]]; then
  echo "the committed corpus fuzz/corpus changed during the run" >&2
  failed+=(corpus)
fi
if (( ${#failed[@]} )); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a finding"
