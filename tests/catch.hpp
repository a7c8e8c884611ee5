#pragma once
// Catch2 v2 or v3, whichever is installed: the test files include this header only.
#if __has_include(<catch2/catch_test_macros.hpp>)
#define FOREMAN_TEST_CATCH2_V3 1
#include <catch2/catch_all.hpp>
#elif __has_include(<catch2/catch.hpp>)
#define FOREMAN_TEST_CATCH2_V3 0
#include <catch2/catch.hpp>
#else
#error "foreman's tests need Catch2 (v2 or v3): apt-get install catch2"
#endif
