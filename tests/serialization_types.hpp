#pragma once
// Values that the serialization tests send both through real pools (serialization_test.cpp) and
// through the wire encoder and decoder alone (wire_test.cpp): a struct that goes through the
// archive (string, vector, map, optional, variant, cpp_int) and one that travels as its bytes.

#include "catch.hpp"
#include "test_support.hpp"

#include <boost/multiprecision/cpp_int.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace foreman_test {

using boost::multiprecision::cpp_int;

inline cpp_int factorial(unsigned n) {
  cpp_int f = 1;
  for (unsigned k = 2; k <= n; ++k) f *= k;
  return f;
}

struct record {
  std::string name;
  std::vector<std::int64_t> values;
  std::map<std::string, int> counts;
  std::optional<double> weight;
  std::variant<int, std::string, std::vector<double>> payload;
  cpp_int big;

  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& name& values& counts& weight& payload& big;
  }
};

/// Record n: over n = 0..39 every field is empty and full, engaged and not, every alternative.
inline record make_record(unsigned n) {
  record r;
  r.name = "record #" + std::to_string(n) + std::string(n % 5, '*');
  for (unsigned k = 0; k < n % 9; ++k) r.values.push_back(static_cast<std::int64_t>(mix(n * 100 + k)));
  for (unsigned k = 0; k < n % 4; ++k) r.counts["key" + std::to_string(k)] = static_cast<int>(n * k);
  if (n % 3 != 0) r.weight = n * 0.25;
  switch (n % 3) {
  case 0:
    r.payload = static_cast<int>(n);
    break;
  case 1:
    r.payload = std::string(n, 'v');
    break;
  default:
    r.payload = std::vector<double>(n % 6, n / 2.0);
    break;
  }
  r.big = factorial(n);
  return r;
}

/// What a worker does to a record, so the test sees it was read, changed and written back.
inline record transform(const record& in) {
  record out = in;
  out.name += " (seen)";
  out.values.push_back(static_cast<std::int64_t>(in.values.size()));
  out.counts["total"] = static_cast<int>(in.counts.size());
  if (out.weight) *out.weight *= 2;
  if (auto* s = std::get_if<std::string>(&out.payload)) *s += "!";
  out.big *= 2;
  return out;
}

inline void check_equal(const record& got, const record& want) {
  CHECK(got.name == want.name);
  CHECK(got.values == want.values);
  CHECK(got.counts == want.counts);
  CHECK(got.weight == want.weight);
  CHECK(got.payload.index() == want.payload.index());
  CHECK(got.payload == want.payload);
  CHECK(got.big == want.big);
}

struct point { // trivially copyable: sent as raw bytes
  double x;
  double y;
  std::int32_t id;
  char tag;
};

} // namespace foreman_test
