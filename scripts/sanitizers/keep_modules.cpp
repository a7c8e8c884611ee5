// A dlclose() that unloads nothing, for the sanitized test runs of scripts/test.sh (LD_PRELOAD,
// in sanitizer-preload.so with asprintf_frames.cpp).
//
// MPI_Finalize unloads Open MPI's components (dlopen'ed plugins: openmpi/lib/openmpi3/mca_*.so,
// pmix_mca_*.so) before LeakSanitizer checks for leaks at exit; the state they allocated in
// MPI_Init and never free then has allocation stacks in "<unknown module>", which no suppression
// (lsan-openmpi.supp) can name. Open MPI 4.1 has no setting that keeps them loaded. With them
// loaded, the first frame of such a stack names its library, and the default fast unwinder does:
// the slow one (fast_unwind_on_malloc=0), which walked each allocation's stack through Open MPI's
// frames without frame pointers, made the sanitized tests take 2.4 times as much CPU time
// (scripts/test.sh gives the figures).
//
// Not instrumented, and loaded before the sanitizer's runtime: ASAN_OPTIONS must then hold
// verify_asan_link_order=0.
extern "C" int dlclose(void*) { return 0; }
