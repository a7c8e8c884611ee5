#pragma once
/// @file hot_path.hpp
/// FOREMAN_DETAIL_COLD marks what the master's and workers' loops rarely call (errors, growing a
/// buffer), kept out of the code that calls it; FOREMAN_DETAIL_INLINE what they call for every
/// value of a message or every task (a copy of a few bytes, a ticket's lookup), inlined even where
/// the compiler's size estimates would not.

#if defined(__GNUC__) || defined(__clang__)
#define FOREMAN_DETAIL_COLD __attribute__((noinline, cold))
#define FOREMAN_DETAIL_INLINE inline __attribute__((always_inline))
#else
#define FOREMAN_DETAIL_COLD
#define FOREMAN_DETAIL_INLINE inline
#endif
