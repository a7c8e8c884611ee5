// asprintf() and vasprintf() with a frame pointer, for the sanitized test runs of scripts/test.sh
// (LD_PRELOAD, with keep_modules.cpp).
//
// Open MPI and PMIx format strings with the C library's asprintf (through _FORTIFY_SOURCE:
// __asprintf_chk, __vasprintf_chk) and keep some of them until exit. The C library is built
// without frame pointers, so LeakSanitizer's fast unwinder stops in it: such a leak's stack was
// malloc, glibc's __vasprintf_internal and a wrong address, and no suppression could name Open
// MPI as its owner. A suppression of __vasprintf_internal by its name needed the C library's
// debugging symbols (libc6-dbg; without them the 2-rank runs failed with these leaks) and made
// every leak check symbolize, which loads the debugging data of every library in the process:
// 0.1 to 0.2 s of CPU time per process (session 26). Through these, the caller's frame is the
// next one on the stack, and lsan-openmpi.supp matches its library by name alone.
//
// Compiled with -fno-omit-frame-pointer, not instrumented. The formatting is the C library's
// (vsnprintf); the result is the same as glibc's: the length, or -1 with *out unspecified.
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

extern "C" int vasprintf(char** out, const char* format, std::va_list args) {
  std::va_list measure;
  va_copy(measure, args);
  const int length = std::vsnprintf(nullptr, 0, format, measure);
  va_end(measure);
  if (length < 0) {
    return -1;
  }
  const std::size_t size = static_cast<std::size_t>(length) + 1;
  auto* text = static_cast<char*>(std::malloc(size));
  if (text == nullptr) {
    return -1;
  }
  std::vsnprintf(text, size, format, args);
  *out = text;
  return length;
}

extern "C" int asprintf(char** out, const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  const int length = vasprintf(out, format, args);
  va_end(args);
  return length;
}

// The _FORTIFY_SOURCE forms that Debian's Open MPI and PMIx call; the flag asks glibc to refuse
// %n in a writable format, which these tests' libraries never pass.
extern "C" int __vasprintf_chk(char** out, int /*flag*/, const char* format, std::va_list args) {
  return vasprintf(out, format, args);
}

extern "C" int __asprintf_chk(char** out, int /*flag*/, const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  const int length = vasprintf(out, format, args);
  va_end(args);
  return length;
}
