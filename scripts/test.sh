#!/usr/bin/env bash
# The test command of the README:  bash scripts/test.sh
#
# 1. installs the Debian/Ubuntu packages that are missing (scripts/install-deps.sh);
# 2. builds everything in build/ (Release at -O2, -Wall -Wextra -Wpedantic -Werror; most test
#    programs at -O0, see tests/CMakeLists.txt; every test program instrumented with
#    AddressSanitizer + UndefinedBehaviorSanitizer, the examples and the benchmark compiled as users
#    compile them) and runs every test but the grouped runs (FOREMAN_GROUPED_TESTS=OFF: the suites
#    keep flat_dispatch, the default users get; 4. runs them); then, as their own step, the
#    multi-host tests (label multihost: Open MPI over TCP between test hosts made of network
#    namespaces by scripts/netns-hosts.sh, docs/testing.md; their programs not instrumented), which
#    need root: as root the configure fails if they cannot run, otherwise they are left out with
#    the reason;
# 3. fuzzes the checkpoint journal's reader (libFuzzer, clang; niced, alongside 4.'s tests when
#    4. runs);
# 4. builds Boost.MPI for MPICH from Debian's source package (once, cached), then builds the suite
#    in build-mpich/ against MPICH with Clang (FOREMAN_MPICH_CXX; test programs at -O0, the
#    examples at -O1) and runs it under MPICH's
#    mpiexec (without the packaging, compile and large tests, which are not built, nor the
#    benchmark, whose smoke runs the first pass makes, nor the tests whose outcome does not
#    depend on the MPI); the suites of tests/CMakeLists.txt's foreman_grouped_runs() are built
#    with hierarchical_dispatch here and run again in grouped pools (label grouped): at -O0 their
#    grouped code costs least to compile (each suite 10-40 s of CPU more, where a program of its
#    own compiled the suite's flat code again). A suite that runs at 2 and 4 ranks is not run at
#    3 here, nor at 2 if it also runs at 1: the first pass runs those.
# Until session 25 the sanitizers had a build and a test pass of their own (build-sanitize/, Debug):
# a third build of the whole suite (826 s of CPU) and a third test pass. The test programs of the
# first pass were at -O0 already, so instrumenting them there costs a little compile time and
# test time (LeakSanitizer's fast unwinder: see sanitizer_env below), and every
# test runs under the sanitizers, its 2- and 3-rank runs too, where the pass of their own left
# those out for time. The official CI of session 24's code took 2,906 s against a budget of 2,100.
# Optimization levels: compiling is most of CI's time, and the optimizer most of compiling (one
# test suite, measured with GCC 12: 51 s at -O3, 41 s at -O2, 27 s at -O1, 15 s at -O0). The
# first pass uses -O2, what Debian builds its packages with, for what users compile (the
# examples, the benchmark, the multi-host program, the 2.5 GiB values), -O0 with the sanitizers for
# the test programs (tests/CMakeLists.txt); the MPICH pass, which checks how foreman behaves under
# another MPI (with another compiler, Clang), -O0 for the test programs, master_worker_test too
# (FOREMAN_OPTIMIZED_TESTS=OFF: at -O2 it took 158 s of the tree's 608 s of CPU time with Clang,
# whose warnings, unlike GCC's, do not depend on the optimizer; until session 29 this pass
# compiled it at -O2 with GCC, for the warnings GCC's inlining raises: those are still raised
# where GCC compiles foreman at -O2 in the first pass, the examples, the benchmark, the
# multi-host programs and the 2.5 GiB test), and -O1
# for the examples, whose runs are the heavy ones (at -O0 the pass's tests took 343 s against
# 240, branch_and_bound at 3 ranks 43 s; session 21). In every tree the test programs share
# one precompiled header of their third-party headers (tests/precompiled.hpp; 8 programs' build: 149 s
# of CPU without it, 108 s with it; session 24).
# The MPICH tree (4.) is configured and built ahead, from the start, in a chain that only gets the
# CPU nothing else wants (SCHED_IDLE): pass 1's tests leave much of it idle. The MPICH pass shows
# its build's output when it reaches it ("built ahead" below).
# Exits non-zero if any step fails; prints a summary at the end.
#
# Environment: FOREMAN_JOBS (build jobs, default: nproc), FOREMAN_CTEST_JOBS (ranks of the tests
# run at once, default 4), FOREMAN_PASSES (default "release fuzz mpich"), FOREMAN_CACHE
# (where the MPICH build of Boost.MPI is kept, default ~/.cache/foreman), FOREMAN_MPICH_CXX (the
# MPICH pass's compiler, default clang++, else CMake's choice), FOREMAN_SKIP_DEPS=1 (skip step 1),
# FOREMAN_FUZZ_SECONDS (how long the journal fuzzer runs, default 60),
# FOREMAN_BROWSER_TESTS=0 (no Chromium: its test is left out; otherwise it must not skip),
# FOREMAN_MULTIHOST_TESTS=ON|AUTO|OFF (default ON as root, else AUTO: tests/multihost/CMakeLists.txt),
# FOREMAN_SANITIZERS=0 (the first pass's test programs not instrumented: quicker, checks less),
# FOREMAN_BUILD_AHEAD=0 (build the MPICH tree in turn, not ahead).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

jobs=${FOREMAN_JOBS:-$(nproc)}
passes=" ${FOREMAN_PASSES:-release fuzz mpich} "
# Every MPI test declares its ranks as CTest PROCESSORS, and ctest -j N runs tests together while
# their ranks add up to N at most (a test wider than N runs alone). With -j 2 every test of 3 or
# more ranks ran alone, and the machine idled through their sleeps and timeouts (the tests' own
# times added up to 439 s, the pass took 392 s). 4 keeps the ranks running at once to what one
# 4-rank test already runs on a 2-core machine.
ctest_jobs=${FOREMAN_CTEST_JOBS:-4}
warnings="-Wall -Wextra -Wpedantic -Werror"
# The HTML timeline test skips itself where Chromium is missing; here Chromium is a dependency.
browser_tests=ON
if [[ ${FOREMAN_BROWSER_TESTS:-1} == 0 ]]; then browser_tests=OFF; fi
export FOREMAN_REQUIRE_BROWSER=1
# The multi-host tests make network namespaces: root can (CI runs as root), and there they must run.
multihost=${FOREMAN_MULTIHOST_TESTS:-AUTO}
if [[ -z ${FOREMAN_MULTIHOST_TESTS-} && $(id -u) -eq 0 ]]; then multihost=ON; fi

summary=()
counts=""
failed=0
start_all=$SECONDS

note() { printf '\n==== %s\n' "$*"; }

# record <status> <what> <seconds>
record() {
  summary+=("$(printf '%-6s %-52s %5ss' "$1" "$2" "$3")")
  [[ $1 == ok ]] || failed=1
}

# step <what> <command>...: runs the command, records its outcome, returns its status.
step() {
  local what=$1 t0=$SECONDS status=0
  shift
  note "$what"
  "$@" || status=$?
  if ((status == 0)); then
    record ok "$what" $((SECONDS - t0))
  else
    record FAILED "$what (exit $status)" $((SECONDS - t0))
  fi
  if [[ -n $counts ]]; then
    summary+=("       $counts")
    counts=""
  fi
  return $status
}

# run_ctest <build dir> [ctest args...]: runs the tests (in the environment of `ctest_env`, an
# `env` command, if set), their output through `ctest_filter`, keeps the log in
# <build dir>/ctest.log, leaves the pass counts in $counts for step() to record.
ctest_env=()
ctest_filter=(cat)
run_ctest() {
  local dir=$1 log=$1/ctest.log
  shift
  "${ctest_env[@]}" ctest --test-dir "$dir" --output-on-failure --no-tests=error --timeout 300 -j "$ctest_jobs" "$@" 2>&1 |
    "${ctest_filter[@]}" | tee "$log"
  local status=${PIPESTATUS[0]}
  counts=$(grep -E '^[0-9]+% tests passed' "$log" | tail -1 || true)
  # ctest's own list of failures: "	  3 - options.3ranks (Timeout)"
  local failures
  failures=$(sed -n '/^The following tests FAILED:/,/^Errors while running CTest/p' "$log" |
    grep -E '^[[:space:]]+[0-9]+ - ' | sed -E 's/^[[:space:]]+[0-9]+ - /         failed: /' || true)
  [[ -z $failures ]] || counts+=$'\n'"$failures"
  # Tests registered as skipped (foreman_add_skipped_test) print their reason, kept in CTest's log.
  local skipped
  skipped=$(sed -n '/^The following tests did not run:/,/^$/p' "$log" |
    grep -E '^[[:space:]]+[0-9]+ - ' | sed -E 's/^[[:space:]]+[0-9]+ - ([^ ]+).*/\1/' | tr '\n' ' ' || true)
  if [[ -n $skipped ]]; then
    counts+=$'\n'"         skipped: $skipped"
    counts+=$'\n'"         why: $(grep -h -m 1 -E '^skipped: ' "$dir"/Testing/Temporary/LastTest*.log | sed 's/^skipped: //' || true)"
  fi
  return "$status"
}

if [[ ${FOREMAN_SKIP_DEPS:-0} != 1 ]]; then
  step "dependencies (scripts/install-deps.sh)" bash "$root/scripts/install-deps.sh" || {
    printf '\nCannot install the dependencies; stopping.\n' >&2
    exit 1
  }
fi

# ---- the MPICH tree, built ahead in the background ---------------------------------------------
# Pass 1's tests leave much of the machine idle (sleeps, timeouts, waits for messages: 50% idle
# over their 377 s, vmstat, 2 cores, session 19), and the MPICH build is a fifth of CI's time. So
# that tree is configured and built from the start, in a background chain under SCHED_IDLE (chrt
# --idle): it only gets a CPU that no test and no other build wants, so the tests' timing is what
# it would be without it. The MPICH pass waits for its build (run_or_join) and shows that build's
# output and time then, as if it had run in turn. FOREMAN_BUILD_AHEAD=0 builds it in turn instead.
ahead=$root/build-ahead
ahead_pid=""
rm -rf "$ahead" && mkdir -p "$ahead"

# ahead_step <name> <command>...: inside the chain, runs the command, its output to
# $ahead/<name>.log, then writes "<exit status> <seconds>" to $ahead/<name>.done.
ahead_step() {
  local name=$1 t0=$SECONDS status=0
  shift
  "$@" >"$ahead/$name.log" 2>&1 || status=$?
  echo "$status $((SECONDS - t0))" >"$ahead/$name.done"
  return "$status"
}

# run_or_join <name> <what> <command>...: with the chain running, waits for its step <name> and
# records it like step() (its output shown now); a step the chain never ran (an earlier one of its
# pass failed) returns 1 unrecorded, as a step after a failed one is never run in turn. Without
# the chain, step().
run_or_join() {
  local name=$1 what=$2 t0=$SECONDS
  shift 2
  if [[ -z $ahead_pid ]]; then
    step "$what" "$@"
    return
  fi
  while [[ ! -e $ahead/$name.done && ! -e $ahead/chain.done ]]; do
    if ! kill -0 "$ahead_pid" 2>/dev/null && [[ ! -e $ahead/$name.done ]]; then
      note "$what"
      record FAILED "$what (the background chain ended before it)" 0
      return 1
    fi
    sleep 2
  done
  [[ -e $ahead/$name.done ]] || return 1
  local status seconds
  read -r status seconds <"$ahead/$name.done"
  note "$what (built ahead: ${seconds}s under SCHED_IDLE; waited $((SECONDS - t0))s for it)"
  cat "$ahead/$name.log"
  if ((status == 0)); then
    record ok "$what (ahead)" "$seconds"
  else
    record FAILED "$what (ahead, exit $status)" "$seconds"
  fi
  return "$status"
}

# pause_ahead STOP|CONT: stops the chain (every process of it) or lets it go on.
pause_ahead() {
  if [[ -n $ahead_pid ]]; then kill "-$1" -- "-$ahead_pid" 2>/dev/null || true; fi
}

stop_ahead() {
  pause_ahead CONT # a stopped process ends only once continued
  if [[ -n $ahead_pid ]]; then kill -- "-$ahead_pid" 2>/dev/null || true; fi
}
trap stop_ahead EXIT

# ---- how pass 1 instruments its test programs -----------------------------------------------------
# Every test program of pass 1 (not the examples, the benchmark or the multi-host programs, compiled
# as users compile them) with AddressSanitizer + UndefinedBehaviorSanitizer
# (FOREMAN_TESTS_SANITIZER_OPTIONS, tests/CMakeLists.txt); FOREMAN_SANITIZERS=0 leaves them out.
# -g1: line tables, all a sanitizer's report shows (-g compiled examples/sum.cpp in 14.6 s, -g1 in
# 13.6). UBSan's null and alignment checks, which at -O0 check every access through a pointer, are
# left out: together they made master_worker_test's compile 57 s against 42 s (either alone saved
# nothing: session 21). What they find is found anyway: a null dereference is a SEGV that ASan
# reports with its stack, and foreman reads wire data through memcpy, never a cast pointer
# (UBSan's other checks stay: overflow, shifts, bounds, enum and bool loads, vptr, unreachable,
# returns). AddressSanitizer's checks stay inlined: as calls into its runtime
# (--param=asan-instrumentation-with-call-threshold=0, GCC) they made CI slower, 2,081 s against
# 2,004 (the build as long, 570 s, the tests 779 s against 725; fresh clones, session 26).
sanitizer_options=""
if [[ ${FOREMAN_SANITIZERS:-1} != 0 ]]; then
  sanitizer_options="-fsanitize=address,undefined;-fno-sanitize=null,alignment;-fno-omit-frame-pointer;-g1"
fi
# sanitizer_env: the environment pass 1's tests run in (through `env`), or nothing; ctest_filter:
# what their output passes through.
# Leaks inside Open MPI (state MPI_Init never frees) are suppressed, nothing else
# (scripts/sanitizers/lsan-openmpi.supp), by the name of the library that allocated them. Loaded
# first (LD_PRELOAD), sanitizer-preload.so puts that library next to the allocator on each such
# leak's stack:
# keep_modules.cpp keeps Open MPI's components loaded until the leak check (else their frames
# would be "<unknown module>"), asprintf_frames.cpp gives the strings Open MPI formats through the
# C library a frame that leads to their caller. That lets LeakSanitizer keep its fast unwinder:
# with the slow one (fast_unwind_on_malloc=0, which found an Open MPI frame deeper down each stack
# instead) the sanitizer pass of session 24's code took 684 s and 1,009 s of CPU time on an idle
# machine, with this 390 s and 425 s (the same build, the same 117 tests; session 25). And it needs
# no frame named: symbolize=0, for the first name asked for loads the debugging data of every
# library in the process, at every process's leak check (33 of the suites' runs, -j2 on an idle
# machine: 88.4 s of CPU time, 71.5 s with symbolize=0, 62.4 s without the leak check; the whole
# pass, 255 tests: 660 s and 793 s of CPU time, against 879 s and 1,197 s for session 25's; session
# 26). The frames of a report are named afterwards, in the output (scripts/sanitizers/symbolize.sh).
sanitizer_preload=$root/build/sanitizer-preload.so
sanitizer_env=()
sanitizer_filter=(cat)
if [[ -n $sanitizer_options ]]; then
  sanitizer_env=(env
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_init_order=1:detect_stack_use_after_return=0:verify_asan_link_order=0:symbolize=0
    LSAN_OPTIONS="suppressions=$root/scripts/sanitizers/lsan-openmpi.supp:print_suppressions=0"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    LD_PRELOAD="$sanitizer_preload")
  sanitizer_filter=(bash "$root/scripts/sanitizers/symbolize.sh")
fi

# Pass 3: Debian's Boost.MPI is built for Open MPI only; scripts/boost-mpi-for-mpich.sh builds it for
# MPICH once into ${FOREMAN_CACHE:-~/.cache/foreman} and reuses it afterwards (foreman_choose_mpi,
# which sets mpi_cmake_args). The packaging tests, the compile-time checks (label compile: programs
# that must not compile, whatever the MPI) and the 2.5 GiB round trips (label large) run in pass 1
# only. So do, neither built nor run here (FOREMAN_MPI_INDEPENDENT_TESTS=OFF), the tests whose
# outcome no MPI implementation changes: those without MPI (scheduler, task_store, wire: the values
# of every type through the encoder and decoder; observe.browser.large, a page of a made-up run),
# and value_fingerprint, whose pools only carry the task values it fingerprints (the journals are
# the checkpoint suites', run here).
# Compiled with Clang (the first pass uses the system's c++, GCC on Debian): a second compiler's
# errors and warnings on the whole suite, and half the CPU time. The MPICH tree took 1,040 s of
# CPU time with GCC 12, the longest step of CI's, waited for 188-264 s after the first pass; with
# Clang 14 at -O0 a test program compiles in 0.35-0.45 of GCC's time (job_test 16.9 s against
# 47.1, pieces_test 15.5 against 35.0; session 29).
mpich=$root/build-mpich
mpich_cxx=${FOREMAN_MPICH_CXX-clang++}
if [[ -n $mpich_cxx ]] && ! command -v "$mpich_cxx" >/dev/null 2>&1; then mpich_cxx=""; fi
# shellcheck source=launcher.sh
source "$root/scripts/launcher.sh"
configure_mpich() {
  local compiler=()
  if [[ -n $mpich_cxx ]]; then
    compiler=(-DCMAKE_CXX_COMPILER="$(command -v "$mpich_cxx")")
    # A tree configured with another compiler is configured anew (CMake keeps the first one).
    if [[ -f $mpich/CMakeCache.txt ]] && ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=${compiler[0]#*=}" "$mpich/CMakeCache.txt"; then
      rm -rf "$mpich"
    fi
  fi
  cmake -S "$root" -B "$mpich" "${compiler[@]}" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=$warnings" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" -DFOREMAN_TESTS_COMPILE_OPTIONS=-O0 -DFOREMAN_OPTIMIZED_TESTS=OFF \
    -DFOREMAN_EXAMPLES_COMPILE_OPTIONS=-O1 \
    -DFOREMAN_BROWSER_TESTS=$browser_tests -DFOREMAN_LARGE_TESTS=OFF -DFOREMAN_BUILD_BENCHMARKS=OFF \
    -DFOREMAN_GROUPED_TESTS=ON \
    -DFOREMAN_MPI_INDEPENDENT_TESTS=OFF "${mpi_cmake_args[@]}"
}

if [[ ${FOREMAN_BUILD_AHEAD:-1} != 0 && $passes == *" mpich "* ]]; then
  set -m # the chain in a process group of its own, which stop_ahead ends whole
  (
    trap - EXIT
    chrt --idle -p 0 "$BASHPID" >/dev/null 2>&1 || renice -n 19 -p "$BASHPID" >/dev/null 2>&1 || true
    # A step runs only after its previous one passed.
    if ahead_step mpich-boost foreman_choose_mpi mpich &&
      ahead_step mpich-configure configure_mpich; then
      ahead_step mpich-build cmake --build "$mpich" --parallel "$jobs" || true
    fi
    touch "$ahead/chain.done"
  ) &
  ahead_pid=$!
  set +m
fi

# ---- pass 1: Release, warnings as errors, the test programs instrumented, every test -------------
build=$root/build
# The test programs at -O0 with the sanitizers, master_worker_test too (FOREMAN_OPTIMIZED_TESTS=OFF).
if [[ -n $sanitizer_options ]]; then instrumented="tests with ${sanitizer_options%%;*}"; else instrumented="no sanitizer"; fi
if [[ $passes == *" release "* ]] && step "configure build/ (Release -O2, most tests -O0, $instrumented, $warnings)" \
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=$warnings" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" -DFOREMAN_TESTS_COMPILE_OPTIONS=-O0 -DFOREMAN_OPTIMIZED_TESTS=OFF \
    "-DFOREMAN_TESTS_SANITIZER_OPTIONS=$sanitizer_options" -DFOREMAN_BROWSER_TESTS=$browser_tests \
    -DFOREMAN_GROUPED_TESTS=OFF -DFOREMAN_MULTIHOST_TESTS="$multihost" &&
  step "build build/" cmake --build "$build" --parallel "$jobs" &&
  { [[ -z $sanitizer_options ]] || step "build build/sanitizer-preload.so (scripts/sanitizers/*.cpp)" \
    "${CXX:-c++}" -shared -fPIC -O2 -fno-omit-frame-pointer -o "$sanitizer_preload" \
    "$root/scripts/sanitizers/keep_modules.cpp" "$root/scripts/sanitizers/asprintf_frames.cpp"; }; then
  ctest_env=("${sanitizer_env[@]}")
  ctest_filter=("${sanitizer_filter[@]}")
  step "test build/ (ctest -j$ctest_jobs, $instrumented, without label multihost)" \
    run_ctest "$build" --label-exclude multihost || true
  ctest_env=()
  ctest_filter=(cat)
  # Apart, so that their time shows (about a minute) and nothing else competes with their timing.
  multihost_tests=$(ctest --test-dir "$build" -N -L multihost | sed -n 's/^Total Tests: //p')
  if ((${multihost_tests:-0} > 0)); then
    # The chain is stopped meanwhile: with it running under SCHED_IDLE, the examples over TCP took
    # up to 5 times as long (stream at 4 ranks 26 s against 6), where the tests on one host did not
    # change (their times summed to 611 s either way; session 19).
    pause_ahead STOP
    step "test build/ multihost (3 hosts of network namespaces, Open MPI over TCP)" \
      run_ctest "$build" -L multihost || true
    pause_ahead CONT
  else
    summary+=("$(printf '%-6s %-52s' skip "multihost tests (not added: see the configure's output)")")
  fi
fi

# ---- API documentation: Doxygen must build it without a single warning ----------------------------
if [[ $passes == *" release "* ]] && command -v doxygen >/dev/null 2>&1; then
  step "docs (Doxygen, warnings are errors)" cmake --build "$build" --target docs || true
fi

# skip_between <tree>: `between_runs` gets the regexes of the 3-rank runs of <tree>'s suites that
# also run at 2 and 4 ranks (one worker and three cover what two do), and of the 2-rank runs of
# those that also run at 1 rank (no worker and three cover what one does); not_3 and not_2 count
# them. Not the examples'.
skip_between() {
  local tree=$1 names name suite
  names=$(ctest --test-dir "$tree" -N | sed -nE 's/^ *Test +#[0-9]+: ([^ ]+)$/\1/p')
  between_runs=() not_3=0 not_2=0
  for name in $names; do
    [[ $name == *.3ranks && $name != examples.* ]] || continue # an example's output at each size is its own
    suite=${name%.3ranks}
    if grep -qx "$suite.2ranks" <<<"$names" && grep -qx "$suite.4ranks" <<<"$names"; then
      between_runs+=("${suite//./\\.}\\.3ranks") && not_3=$((not_3 + 1))
      if grep -qx "$suite.1ranks" <<<"$names"; then
        between_runs+=("${suite//./\\.}\\.2ranks") && not_2=$((not_2 + 1))
      fi
    fi
  done
}

# ---- pass 2: the checkpoint journal reader under libFuzzer (clang) ---------------------------------
# It fails on any crash, leak, sanitizer report, or a damaged journal whose reader accepted a
# record that was not written (tests/fuzz/journal_fuzz.cpp). The corpus starts empty each time.
# With the MPICH pass to come, the fuzzer runs alongside its tests, niced (they leave a core idle
# for much of their time, and nothing else is left to take it), and is waited for before the
# summary: about a minute off CI's time.
fuzz_pid=""
fuzz=$root/build-fuzz
fuzz_seconds=${FOREMAN_FUZZ_SECONDS:-60}
# fuzz_run [prefix...]: runs the fuzzer, behind `prefix` (nice -n 10).
fuzz_run() {
  rm -rf "$fuzz/corpus" && mkdir -p "$fuzz/corpus"
  "$@" "$fuzz/tests/fuzz/journal_fuzz" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
    -artifact_prefix="$fuzz/" "$fuzz/corpus"
}
fuzz_ready=0
if [[ $passes == *" fuzz "* ]]; then
  if step "configure build-fuzz/ (clang++, libFuzzer)" \
    cmake -S "$root" -B "$fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DFOREMAN_BUILD_FUZZERS=ON -DFOREMAN_BUILD_TESTS=OFF -DFOREMAN_BUILD_EXAMPLES=OFF -DFOREMAN_INSTALL=OFF &&
    step "build build-fuzz/" cmake --build "$fuzz" --parallel "$jobs" --target journal_fuzz; then
    fuzz_ready=1
  fi
fi
if ((fuzz_ready)) && [[ $passes != *" mpich "* ]]; then
  step "fuzz the journal reader (${fuzz_seconds} s)" fuzz_run || true
fi

# ---- pass 3: MPICH, with Boost.MPI built for it from Debian's source package ----------------------
# The whole suite built (most of it at -O0) and run under MPICH's mpiexec (Hydra); tests whose rank dies
# on purpose are reported as skipped with the reason (cmake/foremanTesting.cmake, RANK_DIES); what
# it leaves out: see configure_mpich above.
if [[ $passes == *" mpich "* ]]; then
  if run_or_join mpich-boost "Boost.MPI for MPICH (scripts/boost-mpi-for-mpich.sh, cached)" foreman_choose_mpi mpich &&
    run_or_join mpich-configure "configure build-mpich/ (Release, most tests -O0, MPICH, ${mpich_cxx:-c++})" configure_mpich &&
    run_or_join mpich-build "build build-mpich/" cmake --build "$mpich" --parallel "$jobs"; then
    if ((fuzz_ready)); then
      fuzz_run nice -n 10 >"$fuzz/fuzz.log" 2>&1 &
      fuzz_pid=$!
    fi
    skip_between "$mpich" # (see skip_between(): the first pass runs them)
    # The grouped hangs (about 18 s of 7 ranks, which run alone): their paths are the flat loop's,
    # which every suite runs here; the first pass runs them.
    between_runs+=('group_fault_(worker|sub_master)_hangs\.7ranks')
    step "test build-mpich/ (MPICH, without labels packaging, compile, large; $not_3 suites not at 3 ranks, $not_2 of them not at 2)" \
      run_ctest "$mpich" --label-exclude 'packaging|compile|large' -E "^($(IFS='|' && echo "${between_runs[*]}"))\$" || true
  fi
fi
# The fuzzer, when it ran alongside the MPICH tests; or, if their build failed, now.
if ((fuzz_ready)) && [[ $passes == *" mpich "* ]]; then
  what="fuzz the journal reader (${fuzz_seconds} s, niced, alongside the MPICH tests)"
  if [[ -n $fuzz_pid ]]; then
    t0=$SECONDS status=0
    wait "$fuzz_pid" || status=$?
    note "$what"
    cat "$fuzz/fuzz.log"
    if ((status == 0)); then record ok "$what" $((SECONDS - t0)); else record FAILED "$what (exit $status)" $((SECONDS - t0)); fi
  else
    step "fuzz the journal reader (${fuzz_seconds} s)" fuzz_run || true
  fi
fi

# ---- summary -------------------------------------------------------------------------------------
printf '\n==== summary (%ss)\n' $((SECONDS - start_all))
printf '%s\n' "${summary[@]}"
if ((failed)); then
  printf '\nFAILED: see the output of the failed step above (logs: build*/ctest.log)\n'
  exit 1
fi
printf '\nAll steps passed.\n'
