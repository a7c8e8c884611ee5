// Values of every kind through the wire encoder and decoder (detail/wire.hpp, archive.hpp) as a
// pool's messages carry them, without MPI: cpp_int, tuple and pair, a class with a private
// serialize(), polymorphic classes behind shared pointers (exported classes, object tracking),
// trivially copyable structs holding raw pointers, whose serialize() wins over their bytes, plain
// structs without serialize() inside every container and vocabulary type, which of them are
// refused for the addresses in their bytes, and what the decoder does with damaged bytes.
//
// A pool writes each task and result as an item of a message (put_item), a large contiguous one
// as a body sent apart; a worker reads its tasks one after another into one object it reuses, the
// master its results into fresh ones (get_item). Between the two the transport moves the bytes
// unchanged, whatever the type: serialization_test.cpp sends one type of each way through real
// pools. This program runs without mpirun.

#include "catch.hpp"
#include "serialization_types.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/serialization/access.hpp>
#include <boost/serialization/base_object.hpp>
#include <boost/serialization/export.hpp>
#include <boost/serialization/shared_ptr.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace {

using foreman_test::check_equal;
using foreman_test::cpp_int;
using foreman_test::factorial;
using foreman_test::make_record;
using foreman_test::point;
using foreman_test::record;

// Sends `values` as a pool sends tasks or results: as the items of one message, their bodies
// apart; reads them back in order into one reused object (a worker's tasks) and into fresh ones
// (the master's results), and calls check(read, sent) for each. Returns how many were bodies.
template <class T, class Check>
std::size_t through_items(const std::vector<T>& values, Check check) {
  std::vector<char> message;
  std::vector<foreman::detail::body_span> bodies;
  {
    foreman::detail::encoder out(message);
    for (const T& v : values)
      if (const auto body = foreman::detail::put_item(out, v)) bodies.push_back(body);
  }
  T reused{};
  for (const bool fresh : {false, true}) {
    INFO((fresh ? "into fresh objects" : "into one object, reused"));
    foreman::detail::decoder in(message.data(), message.size());
    std::size_t next_body = 0;
    for (std::size_t n = 0; n < values.size(); ++n) {
      INFO("value " << n);
      T fresh_value{};
      T& into = fresh ? fresh_value : reused;
      std::size_t body_bytes = 0;
      if (const auto body = foreman::detail::get_item(in, into, body_bytes)) { // what MPI receives there
        REQUIRE(next_body < bodies.size());
        REQUIRE(body.bytes == bodies[next_body].bytes);
        CHECK(body_bytes == body.bytes);
        std::memcpy(body.data, bodies[next_body].data, body.bytes);
        ++next_body;
      }
      check(std::as_const(into), values[n]);
    }
    CHECK(in.exhausted());
    CHECK(next_body == bodies.size());
  }
  return bodies.size();
}

class secretive { // Boost's idiom: a private serialize() and a friend
public:
  secretive() = default;
  secretive(int a, std::string b) : a_(a), b_(std::move(b)) {}
  int a() const { return a_; }
  const std::string& b() const { return b_; }

private:
  friend class boost::serialization::access;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& a_& b_;
  }
  int a_ = 0;
  std::string b_;
};

} // namespace

TEST_CASE("the type traits accept the types of these tests", "[serialization]") {
  STATIC_REQUIRE(foreman::is_serializable_v<record>);
  STATIC_REQUIRE(foreman::is_serializable_v<secretive>);
  STATIC_REQUIRE(foreman::is_serializable_v<point>);
  STATIC_REQUIRE(foreman::is_serializable_v<cpp_int>);
  STATIC_REQUIRE(foreman::is_serializable_v<std::tuple<int, std::string, std::vector<double>>>);
  STATIC_REQUIRE(foreman::is_serializable_v<std::pair<std::string, cpp_int>>);
  STATIC_REQUIRE(foreman::is_serializable_v<std::optional<std::map<int, std::string>>>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<point>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<record>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<std::string>);
  struct opaque {
    std::string s;
  };
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<opaque>);
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::vector<opaque>>);
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::optional<opaque>>);
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<int*>);
  // The multi- and unordered multi- containers check their elements too.
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::multimap<int, opaque>>);
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::unordered_multimap<int, opaque>>);
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::multiset<opaque>>);
  // Views are never serializable, nor bitwise, as themselves or inside other types.
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::string_view>);
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::vector<std::string_view>>);
  STATIC_REQUIRE_FALSE(foreman::is_serializable_v<std::pair<int, const char*>>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<std::string_view>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<std::optional<std::string_view>>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<std::reference_wrapper<int>>);
}

TEST_CASE("cpp_int values", "[serialization]") {
  std::vector<cpp_int> values;
  for (unsigned n = 0; n <= 120; n += 3) values.push_back(factorial(n));
  through_items(values, [](const cpp_int& got, const cpp_int& want) { CHECK(got == want); });
  // An independent check of one value: 120! has 199 decimal digits.
  CHECK(values.back().str().size() == 199);
}

TEST_CASE("std::tuple and std::pair", "[serialization]") {
  using task = std::tuple<int, std::string, std::vector<double>>;
  using result = std::pair<std::string, cpp_int>;
  std::vector<task> tasks;
  std::vector<result> results;
  for (int i = 0; i < 25; ++i) {
    tasks.emplace_back(i, std::string(static_cast<std::size_t>(i), 'a' + static_cast<char>(i)),
                       std::vector<double>(static_cast<std::size_t>(i % 4), i * 1.5));
    results.emplace_back(std::string(static_cast<std::size_t>(i), 'r'), factorial(static_cast<unsigned>(i) + 20));
  }
  through_items(tasks, [](const task& got, const task& want) { CHECK(got == want); });
  through_items(results, [](const result& got, const result& want) {
    CHECK(got.first == want.first);
    CHECK(got.second == want.second);
  });
}

TEST_CASE("a class with a private serialize() and friend boost::serialization::access", "[serialization]") {
  std::vector<secretive> values;
  for (int i = 0; i < 20; ++i) values.emplace_back(i, "s" + std::to_string(i * i));
  through_items(values, [](const secretive& got, const secretive& want) {
    CHECK(got.a() == want.a());
    CHECK(got.b() == want.b());
  });
}

// ---- polymorphic classes through base pointers: Boost's class export and object tracking -----
struct shape {
  virtual ~shape() = default;
  virtual double area() const = 0;
  template <class Archive>
  void serialize(Archive&, const unsigned int) {}
};
struct circle : shape {
  double r = 0;
  circle() = default;
  explicit circle(double radius) : r(radius) {}
  double area() const override { return 3.0 * r * r; } // exact in binary for the radii used
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& boost::serialization::base_object<shape>(*this) & r;
  }
};
struct labelled_square : shape {
  double side = 0;
  std::string label;
  labelled_square() = default;
  labelled_square(double s, std::string l) : side(s), label(std::move(l)) {}
  double area() const override { return side * side; }
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& boost::serialization::base_object<shape>(*this) & side& label;
  }
};
BOOST_CLASS_EXPORT(circle)
BOOST_CLASS_EXPORT(labelled_square)

struct drawing {
  std::vector<std::shared_ptr<shape>> shapes; // shapes[0] and shapes.back() are one object
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& shapes;
  }
};

TEST_CASE("polymorphic shapes behind shared pointers keep their types and their aliasing", "[serialization]") {
  std::vector<drawing> values(12);
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto first = std::make_shared<circle>(0.5 * static_cast<double>(i + 1));
    values[i].shapes.push_back(first);
    values[i].shapes.push_back(std::make_shared<labelled_square>(static_cast<double>(i), std::string(i + 1, 'e')));
    values[i].shapes.push_back(first);
  }
  through_items(values, [](const drawing& got, const drawing& want) {
    REQUIRE(got.shapes.size() == 3);
    const auto* c = dynamic_cast<const circle*>(got.shapes[0].get());
    const auto* sq = dynamic_cast<const labelled_square*>(got.shapes[1].get());
    REQUIRE(c != nullptr);
    REQUIRE(sq != nullptr);
    CHECK(got.shapes[2] == got.shapes[0]);  // one object, as sent
    CHECK(got.shapes[0] != want.shapes[0]); // the reader's own
    const auto& want_sq = dynamic_cast<const labelled_square&>(*want.shapes[1]);
    CHECK(c->r == dynamic_cast<const circle&>(*want.shapes[0]).r);
    CHECK(sq->side == want_sq.side);
    CHECK(sq->label == want_sq.label);
    CHECK(sq->area() == want_sq.area());
  });
}

// ---- a serialize() wins over the bytes: trivially copyable structs holding raw pointers ----------
namespace {
// The pointees Boost allocates while loading a holder: a holder does not own its pointee, so this
// test does, until the process ends.
std::vector<std::unique_ptr<shape>>& loaded_shapes() {
  static std::vector<std::unique_ptr<shape>> owned;
  return owned;
}

struct holder { // trivially copyable: its bytes would carry an address of the sending process
  shape* p = nullptr;
  int id = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& p& id;
    if constexpr (Archive::is_loading::value) loaded_shapes().emplace_back(p);
  }
};

struct box { // not polymorphic
  double side = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& side& label;
  }
};
std::vector<std::unique_ptr<box>>& loaded_boxes() {
  static std::vector<std::unique_ptr<box>> owned;
  return owned;
}

struct box_holder {
  box* p = nullptr;
  int id = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& p& id;
    if constexpr (Archive::is_loading::value) loaded_boxes().emplace_back(p);
  }
};

// Marked by its author as bytes: its serialize() is for other archives, foreman sends its bytes.
struct marked {
  std::int32_t a = 0;
  double b = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& a& b;
  }
};
} // namespace
BOOST_IS_BITWISE_SERIALIZABLE(marked)

TEST_CASE("a serialize() wins over the bytes of a trivially copyable struct; marked and plain ones stay bytes",
          "[serialization]") {
  STATIC_REQUIRE(std::is_trivially_copyable_v<holder>);
  STATIC_REQUIRE(std::is_trivially_copyable_v<box_holder>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<holder>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<box_holder>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<std::optional<holder>>);
  STATIC_REQUIRE_FALSE(foreman::detail::is_bitwise_v<std::array<holder, 2>>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<marked>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<point>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<std::array<point, 2>>);

  // The pointee travels, not the address: the decoded holder points to an object of its own.
  labelled_square square(2.5, "sq");
  std::vector<char> bytes;
  {
    foreman::detail::encoder out(bytes);
    out.put(holder{&square, 7});
    out.put(box_holder{nullptr, 8});
  }
  foreman::detail::decoder in(bytes.data(), bytes.size());
  const auto h = in.get<holder>();
  const auto empty = in.get<box_holder>();
  CHECK(in.exhausted());
  CHECK(h.id == 7);
  REQUIRE(h.p != nullptr);
  CHECK(h.p != &square);
  const auto* sq = dynamic_cast<const labelled_square*>(h.p);
  REQUIRE(sq != nullptr);
  CHECK(sq->side == 2.5);
  CHECK(sq->label == "sq");
  CHECK(empty.id == 8);
  CHECK(empty.p == nullptr);

  // The raw path is unchanged for the others: their bytes and nothing else.
  std::vector<char> raw;
  {
    foreman::detail::encoder out(raw);
    out.put(marked{3, 0.5});
    out.put(point{1, 2, 3, 'p'});
  }
  CHECK(raw.size() == sizeof(marked) + sizeof(point));
}

TEST_CASE("structs holding raw pointers to polymorphic and plain objects, as items", "[serialization]") {
  std::vector<std::unique_ptr<shape>> shapes; // the sender's values point into these
  std::vector<holder> holders;
  for (int i = 0; i < 30; ++i) {
    if (i % 2 == 0)
      shapes.push_back(std::make_unique<circle>(0.5 * (i + 1)));
    else
      shapes.push_back(std::make_unique<labelled_square>(static_cast<double>(i), std::string(i % 7 + 1, 'q')));
    holders.push_back(holder{shapes.back().get(), i});
  }
  through_items(holders, [](const holder& got, const holder& want) {
    CHECK(got.id == want.id);
    REQUIRE(got.p != nullptr);
    CHECK(got.p != want.p); // the pointee travels, not the address
    if (const auto* w = dynamic_cast<const circle*>(want.p)) {
      const auto* c = dynamic_cast<const circle*>(got.p);
      REQUIRE(c != nullptr);
      CHECK(c->r == w->r);
    } else {
      const auto& w_sq = dynamic_cast<const labelled_square&>(*want.p);
      const auto* sq = dynamic_cast<const labelled_square*>(got.p);
      REQUIRE(sq != nullptr);
      CHECK(sq->side == w_sq.side);
      CHECK(sq->label == w_sq.label);
    }
  });

  std::vector<box> boxes(20);
  std::vector<box_holder> box_holders;
  for (int i = 0; i < 20; ++i) {
    boxes[static_cast<std::size_t>(i)] = box{i * 0.25, "box" + std::to_string(i)};
    box_holders.push_back(box_holder{&boxes[static_cast<std::size_t>(i)], -i});
  }
  through_items(box_holders, [](const box_holder& got, const box_holder& want) {
    CHECK(got.id == want.id);
    REQUIRE(got.p != nullptr);
    CHECK(got.p != want.p);
    CHECK(got.p->side == want.p->side);
    CHECK(got.p->label == want.p->label);
  });
}

// ---- plain structs (no serialize()) inside the containers and vocabulary types ------------------
namespace {
struct plain_point { // no serialize(): travels as its bytes, at any depth
  double x;
  double y;
};
bool operator==(const plain_point& a, const plain_point& b) {
  return a.x == b.x && a.y == b.y;
}
bool operator<(const plain_point& a, const plain_point& b) {
  return a.x < b.x || (a.x == b.x && a.y < b.y);
}
struct point_hash {
  std::size_t operator()(const plain_point& p) const {
    return std::hash<double>()(p.x) * 31 + std::hash<double>()(p.y);
  }
};

plain_point pt(std::size_t n, std::size_t k) {
  return {static_cast<double>(n) + 0.5 * static_cast<double>(k), -1e-3 * static_cast<double>(k * n + 1)};
}

// A user's serialize() that writes plain structs, directly and inside containers.
struct survey {
  plain_point origin{};
  std::vector<plain_point> path;
  std::map<std::string, std::deque<plain_point>> named;
  std::vector<std::optional<plain_point>> gaps;
  std::vector<std::array<plain_point, 2>> segments;
  std::list<std::pair<plain_point, std::string>> labels;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& origin& path& named& gaps& segments& labels;
  }
  bool operator==(const survey& o) const {
    return origin == o.origin && path == o.path && named == o.named && gaps == o.gaps && segments == o.segments &&
           labels == o.labels;
  }
};

// Sends twelve values of T made by `make` through an encoder and decoder, and as the items of a
// message, as a pool sends them as Task and back as Result (through_items); returns how many
// travelled as bodies.
template <class T, class Make>
std::size_t round_trip(const char* name, Make make) {
  STATIC_REQUIRE(foreman::is_serializable_v<T>);
  INFO(name);
  std::vector<T> values;
  for (std::size_t n = 0; n < 12; ++n) values.push_back(make(n));
  for (const T& t : values) {
    std::vector<char> bytes;
    foreman::detail::encoder(bytes).put(t);
    foreman::detail::decoder in(bytes.data(), bytes.size());
    T back{};
    in.get(back);
    CHECK(in.exhausted());
    CHECK(back == t);
  }
  return through_items(values, [](const T& got, const T& want) { CHECK(got == want); });
}

template <class Container>
Container points(std::size_t n, std::size_t count) {
  Container c;
  for (std::size_t k = 0; k < count; ++k) c.insert(c.end(), pt(n, k));
  return c;
}
} // namespace

TEST_CASE("a struct of bitwise members without serialize() travels in every container and vocabulary type",
          "[serialization]") {
  using P = plain_point;
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<P>);
  // Twelve values each: n == 11 is a vector of 5000 points (80 KB), a body of its own.
  CHECK(round_trip<std::vector<P>>("vector",
                                   [](std::size_t n) { return points<std::vector<P>>(n, n == 11 ? 5000 : n); }) == 1);
  round_trip<std::deque<P>>("deque", [](std::size_t n) { return points<std::deque<P>>(n, n); });
  round_trip<std::list<P>>("list", [](std::size_t n) { return points<std::list<P>>(n, n); });
  round_trip<std::array<P, 3>>("array", [](std::size_t n) { return std::array<P, 3>{pt(n, 0), pt(n, 1), pt(n, 2)}; });
  round_trip<std::set<P>>("set", [](std::size_t n) { return points<std::set<P>>(n, n); });
  round_trip<std::unordered_set<P, point_hash>>(
      "unordered_set", [](std::size_t n) { return points<std::unordered_set<P, point_hash>>(n, n); });
  round_trip<std::map<int, P>>("map values", [](std::size_t n) {
    std::map<int, P> m;
    for (std::size_t k = 0; k < n; ++k) m[static_cast<int>(k * 7)] = pt(n, k);
    return m;
  });
  round_trip<std::map<P, int>>("map keys", [](std::size_t n) {
    std::map<P, int> m;
    for (std::size_t k = 0; k < n; ++k) m[pt(n, k)] = static_cast<int>(k);
    return m;
  });
  round_trip<std::multimap<P, P>>("multimap", [](std::size_t n) {
    std::multimap<P, P> m;
    for (std::size_t k = 0; k < n; ++k) m.emplace(pt(n, k % 3), pt(k, n));
    return m;
  });
  round_trip<std::unordered_map<int, P>>("unordered_map values", [](std::size_t n) {
    std::unordered_map<int, P> m;
    for (std::size_t k = 0; k < n; ++k) m[static_cast<int>(k)] = pt(n, k);
    return m;
  });
  round_trip<std::unordered_map<P, int, point_hash>>("unordered_map keys", [](std::size_t n) {
    std::unordered_map<P, int, point_hash> m;
    for (std::size_t k = 0; k < n; ++k) m[pt(n, k)] = static_cast<int>(k);
    return m;
  });
  round_trip<std::pair<int, P>>("pair", [](std::size_t n) { return std::pair<int, P>{static_cast<int>(n), pt(n, 1)}; });
  round_trip<std::tuple<P, int, std::string>>("tuple", [](std::size_t n) {
    return std::tuple<P, int, std::string>{pt(n, 2), static_cast<int>(n), std::string(n, 't')};
  });
  round_trip<std::optional<P>>(
      "optional", [](std::size_t n) { return n % 3 == 0 ? std::optional<P>{} : std::optional<P>{pt(n, 3)}; });
  round_trip<std::optional<std::vector<P>>>("optional vector", [](std::size_t n) {
    return n % 3 == 0 ? std::optional<std::vector<P>>{} : points<std::vector<P>>(n, n);
  });
  round_trip<std::variant<int, P>>("variant", [](std::size_t n) {
    return n % 2 == 0 ? std::variant<int, P>{static_cast<int>(n)} : std::variant<int, P>{pt(n, 4)};
  });
  round_trip<std::variant<std::string, P>>("variant with a string", [](std::size_t n) {
    return n % 2 == 0 ? std::variant<std::string, P>{std::string(n, 'v')} : std::variant<std::string, P>{pt(n, 5)};
  });
  round_trip<survey>("a user's serialize()", [](std::size_t n) {
    survey s;
    s.origin = pt(n, 99);
    s.path = points<std::vector<P>>(n, n);
    for (std::size_t k = 0; k < n % 4; ++k) s.named["leg" + std::to_string(k)] = points<std::deque<P>>(n + k, k + 1);
    for (std::size_t k = 0; k < n; ++k) s.gaps.push_back(k % 2 == 0 ? std::optional<P>{} : pt(n, k));
    for (std::size_t k = 0; k < n; ++k) s.segments.push_back({pt(n, k), pt(k, n)});
    for (std::size_t k = 0; k < n % 5; ++k) s.labels.emplace_back(pt(k, n), std::string(k, 'l'));
    return s;
  });
}

// ---- plain structs (no serialize()) whose bytes hold an address --------------------------------
namespace {
struct with_pointer {
  const double* p;
  int id;
};
struct wraps_pointer { // one level down
  int id;
  with_pointer inner;
};
struct array_of_pointers {
  std::array<const double*, 3> corners;
  int id;
};
struct c_array_of_pointers {
  int id;
  const char* names[2];
};
struct single_pointer {
  shape* p;
};
struct single_view { // one field, and one a class could be built from two values: reached leaf by leaf
  std::string_view name;
};
struct with_function_pointer {
  double (*f)(double);
  int id;
};
struct with_member_pointer {
  double plain_point::*coordinate;
  int id;
};
struct with_method_pointer {
  double (shape::*measure)() const;
  int id;
};
struct pointer_base {
  const int* p;
};
struct derived_from_pointer : pointer_base { // a base with fields and fields of its own: leaf by leaf
  int id;
};
struct nothing {};
struct empty_then_pointer { // an empty field takes no braced initialiser: leaf by leaf
  nothing tag;
  const int* p;
};
struct optional_pointer {
  std::optional<const int*> p;
  int id;
};
struct variant_pointer {
  std::variant<int, const char*> v;
  int id;
};
struct wraps_holder { // a field's own serialize() is bypassed: the outer struct travels as bytes
  holder h;
  int id;
};
struct deep_array_of_pointers { // an array of structs holding pointers, two levels down
  int id;
  wraps_pointer rows[2];
};

// Plain structs without an address anywhere: they travel as bytes, as before.
struct plain_inner {
  double w;
  std::int32_t k[3];
};
struct plain_deep {
  plain_point corners[2];
  std::array<std::int16_t, 3> ids;
  plain_inner in;
  std::optional<double> weight;
  char tag;
  bool operator==(const plain_deep& o) const {
    return corners[0] == o.corners[0] && corners[1] == o.corners[1] && ids == o.ids && in.w == o.in.w &&
           in.k[0] == o.in.k[0] && in.k[1] == o.in.k[1] && in.k[2] == o.in.k[2] && weight == o.weight && tag == o.tag;
  }
};
struct plain_base {
  double a;
};
struct plain_derived : plain_base {
  int b;
  bool operator==(const plain_derived& o) const { return a == o.a && b == o.b; }
};
struct single_array { // one field of many leaves: more than are counted, and nothing to find
  double values[300];
};
struct variant_plain {
  std::variant<int, double> v;
  nothing tag;
  int id;
};
class private_pointer { // fields out of reach and no serialize(): sent as bytes, unchecked, as before
public:
  int id = 0;
  bool points() const { return p_ != nullptr; }

private:
  const int* p_ = nullptr;
};
struct marked_pointer { // marked by its author: its bytes are taken at its word
  const int* p;
  int id;
};
} // namespace
BOOST_IS_BITWISE_SERIALIZABLE(marked_pointer)

TEST_CASE("a plain struct sent as its bytes is refused when a field at any depth holds an address", "[serialization]") {
  using foreman::is_serializable_v;
  using foreman::detail::sends_address_as_bytes_v;
  // Each is bitwise (it would travel as its bytes) and refused.
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<with_pointer>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<wraps_holder>);
  STATIC_REQUIRE(sends_address_as_bytes_v<with_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<wraps_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<array_of_pointers>);
  STATIC_REQUIRE(sends_address_as_bytes_v<c_array_of_pointers>);
  STATIC_REQUIRE(sends_address_as_bytes_v<single_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<single_view>);
  STATIC_REQUIRE(sends_address_as_bytes_v<with_function_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<with_member_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<with_method_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<derived_from_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<empty_then_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<optional_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<variant_pointer>);
  STATIC_REQUIRE(sends_address_as_bytes_v<wraps_holder>);
  STATIC_REQUIRE(sends_address_as_bytes_v<deep_array_of_pointers>);
  // Inside the containers and vocabulary types, whose elements travel as bytes.
  STATIC_REQUIRE(sends_address_as_bytes_v<std::vector<with_pointer>>);
  STATIC_REQUIRE(sends_address_as_bytes_v<std::optional<wraps_pointer>>);
  STATIC_REQUIRE(sends_address_as_bytes_v<std::array<with_pointer, 2>>);
  STATIC_REQUIRE(sends_address_as_bytes_v<std::pair<int, single_pointer>>);
  STATIC_REQUIRE(sends_address_as_bytes_v<std::tuple<std::string, array_of_pointers>>);
  STATIC_REQUIRE(sends_address_as_bytes_v<std::map<int, std::vector<c_array_of_pointers>>>);
  STATIC_REQUIRE(sends_address_as_bytes_v<std::variant<int, with_pointer>>);
  STATIC_REQUIRE_FALSE(is_serializable_v<with_pointer>);
  STATIC_REQUIRE_FALSE(is_serializable_v<deep_array_of_pointers>);
  STATIC_REQUIRE_FALSE(is_serializable_v<std::vector<with_pointer>>);
  STATIC_REQUIRE_FALSE(is_serializable_v<std::pair<int, single_pointer>>);
#ifdef __cpp_lib_span
  struct with_span {
    std::span<const double> values;
    int id;
  };
  STATIC_REQUIRE(sends_address_as_bytes_v<with_span>);
#endif

  // Not refused: no address in them, a serialize() of their own, marked, or out of reach.
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<point>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<plain_point>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<plain_deep>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<plain_derived>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<single_array>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<variant_plain>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<std::vector<plain_deep>>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<std::map<std::string, std::array<plain_inner, 2>>>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<holder>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<std::vector<holder>>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<marked_pointer>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<private_pointer>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<std::string>);
  STATIC_REQUIRE_FALSE(sends_address_as_bytes_v<record>);
  STATIC_REQUIRE(is_serializable_v<plain_deep>);
  STATIC_REQUIRE(is_serializable_v<plain_derived>);
  STATIC_REQUIRE(is_serializable_v<std::vector<plain_deep>>);
  STATIC_REQUIRE(is_serializable_v<private_pointer>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<plain_deep>);
  STATIC_REQUIRE(foreman::detail::is_bitwise_v<private_pointer>);
}

TEST_CASE("plain structs without an address travel as their bytes, nested, with arrays and bases", "[serialization]") {
  auto deep = [](std::size_t n) {
    plain_deep d{};
    d.corners[0] = pt(n, 1);
    d.corners[1] = pt(n, 2);
    d.ids = {static_cast<std::int16_t>(n), static_cast<std::int16_t>(-1), 7};
    d.in.w = 0.25 * static_cast<double>(n);
    d.in.k[0] = static_cast<std::int32_t>(n);
    d.in.k[2] = -3;
    if (n % 2) d.weight = static_cast<double>(n) / 3;
    d.tag = static_cast<char>('a' + n);
    return d;
  };
  round_trip<plain_deep>("nested plain structs, C arrays, std::array, std::optional", deep);
  round_trip<std::vector<plain_deep>>("a vector of them", [&](std::size_t n) {
    std::vector<plain_deep> v;
    for (std::size_t k = 0; k < n; ++k) v.push_back(deep(n + k));
    return v;
  });
  round_trip<plain_derived>("a base class", [](std::size_t n) {
    plain_derived d{};
    d.a = static_cast<double>(n) * 1.5;
    d.b = static_cast<int>(n);
    return d;
  });
}

TEST_CASE("a vector of plain structs is written as one copy of its elements", "[serialization]") {
  const auto v = points<std::vector<plain_point>>(3, 1000);
  std::vector<char> bytes;
  foreman::detail::encoder(bytes).put(v);
  // Its element count and item version, then the elements' bytes: nothing per element.
  CHECK(bytes.size() <= v.size() * sizeof(plain_point) + 16);
  CHECK(std::memcmp(bytes.data() + bytes.size() - v.size() * sizeof(plain_point), v.data(),
                    v.size() * sizeof(plain_point)) == 0);
}

// ---- the message decoder against damaged bytes ---------------------------------------------------
TEST_CASE("a decoder refuses a cut or inflated archive with foreman::error", "[serialization]") {
  std::vector<char> bytes;
  {
    foreman::detail::encoder out(bytes);
    out.put(std::uint32_t{7});
    out.put(make_record(11));
    out.put(std::string("tail"));
  }
  { // the whole message reads back
    foreman::detail::decoder in(bytes.data(), bytes.size());
    CHECK(in.get<std::uint32_t>() == 7);
    record r;
    in.get(r);
    check_equal(r, make_record(11));
    CHECK(in.get<std::string>() == "tail");
    CHECK(in.exhausted());
  }
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) { // every strict prefix fails cleanly
    foreman::detail::decoder in(bytes.data(), cut);
    auto read_all = [&] {
      in.get<std::uint32_t>();
      record r;
      in.get(r);
      in.get<std::string>();
    };
    CHECK_THROWS_AS(read_all(), foreman::error);
  }
  { // a string length far beyond the message is refused before any allocation
    std::vector<char> lie;
    foreman::detail::encoder(lie).put(std::string("abc"));
    const std::uint64_t huge = std::uint64_t{1} << 60;
    std::memcpy(lie.data(), &huge, sizeof huge);
    foreman::detail::decoder in(lie.data(), lie.size());
    CHECK_THROWS_AS(in.get<std::string>(), foreman::error);
  }
}
