// Types that travel between ranks: a user struct holding string, vector, map, optional, variant
// and cpp_int; tuple and pair; a trivially copyable struct (raw bytes, no archive); a class with
// a private serialize(); polymorphic classes behind shared pointers (exported classes, object
// tracking); trivially copyable structs holding raw pointers, whose serialize() wins over their
// bytes; plain structs without serialize() inside every container and vocabulary type; 64 MiB
// tasks and results; and what the message decoder does with damaged bytes.

#include "catch.hpp"
#include "test_support.hpp"

#include <foreman/foreman.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/multiprecision/cpp_int.hpp>
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
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
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

using boost::multiprecision::cpp_int;
using foreman_test::mix;

cpp_int factorial(unsigned n) {
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

record make_record(unsigned n) {
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

// What a worker does to a record, so the test sees it was read, changed and written back.
record transform(const record& in) {
  record out = in;
  out.name += " (seen)";
  out.values.push_back(static_cast<std::int64_t>(in.values.size()));
  out.counts["total"] = static_cast<int>(in.counts.size());
  if (out.weight) *out.weight *= 2;
  if (auto* s = std::get_if<std::string>(&out.payload)) *s += "!";
  out.big *= 2;
  return out;
}

void check_equal(const record& got, const record& want) {
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

TEST_CASE("a struct of string, vector, map, optional, variant and cpp_int survives the round trip", "[serialization]") {
  foreman::master_worker<record, record> pool;
  std::vector<record> tasks;
  for (unsigned n = 0; n < 40; ++n) tasks.push_back(make_record(n));
  // Both variants of each field occur: empty and full, engaged and not, every alternative.
  const auto same = pool.run(tasks, [](const record& r) { return r; });
  const auto changed = pool.run(tasks, transform);
  if (pool.is_master()) {
    REQUIRE(same.size() == tasks.size());
    REQUIRE(changed.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("record " << i);
      check_equal(same[i], tasks[i]);
      check_equal(changed[i], transform(tasks[i]));
    }
    // The factorials are far beyond 64 bits and consistent: n! = n * (n-1)!.
    CHECK(same[39].big >
          cpp_int(std::numeric_limits<std::uint64_t>::max()) * std::numeric_limits<std::uint64_t>::max());
    for (unsigned n = 1; n < 40; ++n) CHECK(same[n].big == same[n - 1].big * n);
    CHECK(changed[39].big == 2 * same[39].big);
  }
}

TEST_CASE("cpp_int results computed on workers", "[serialization]") {
  foreman::master_worker<unsigned, cpp_int> pool;
  std::vector<unsigned> tasks;
  for (unsigned n = 0; n <= 120; n += 3) tasks.push_back(n);
  const auto r = pool.run(tasks, [](unsigned n) { return factorial(n); });
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) CHECK(r[i] == factorial(tasks[i]));
    // An independent check of one value: 120! has 199 decimal digits.
    CHECK(r.back().str().size() == 199);
  }
}

TEST_CASE("std::tuple and std::pair, as Task and as Result", "[serialization]") {
  using task = std::tuple<int, std::string, std::vector<double>>;
  using result = std::pair<std::string, cpp_int>;
  foreman::master_worker<task, result> pool;
  std::vector<task> tasks;
  for (int i = 0; i < 25; ++i)
    tasks.emplace_back(i, std::string(static_cast<std::size_t>(i), 'a' + static_cast<char>(i)),
                       std::vector<double>(static_cast<std::size_t>(i % 4), i * 1.5));
  auto fn = [](const task& t) {
    const auto& [n, s, v] = t;
    double sum = 0;
    for (double d : v) sum += d;
    return result{s + "/" + std::to_string(sum), factorial(static_cast<unsigned>(n) + 20)};
  };
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(r[i].first == fn(tasks[i]).first);
      CHECK(r[i].second == fn(tasks[i]).second);
    }
  }
}

TEST_CASE("a trivially copyable struct travels as raw bytes", "[serialization]") {
  foreman::master_worker<point, point> pool;
  std::vector<point> tasks;
  for (int i = 0; i < 50; ++i) tasks.push_back(point{i * 0.5, -i * 1e-300, i, static_cast<char>('A' + i % 26)});
  auto fn = [](const point& p) { return point{p.y, p.x, p.id * 2, static_cast<char>(p.tag + 1)}; };
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(r[i].x == tasks[i].y);
      CHECK(r[i].y == tasks[i].x);
      CHECK(r[i].id == tasks[i].id * 2);
      CHECK(r[i].tag == tasks[i].tag + 1);
    }
  }
}

TEST_CASE("a class with a private serialize() and friend boost::serialization::access", "[serialization]") {
  foreman::master_worker<secretive, secretive> pool;
  std::vector<secretive> tasks;
  for (int i = 0; i < 20; ++i) tasks.emplace_back(i, "s" + std::to_string(i * i));
  const auto r = pool.run(tasks, [](const secretive& s) { return secretive(s.a() + 1, s.b() + "+"); });
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      CHECK(r[i].a() == tasks[i].a() + 1);
      CHECK(r[i].b() == tasks[i].b() + "+");
    }
  }
}

namespace {
constexpr std::size_t mib64 = std::size_t{64} << 20;

// Contents that a truncated, shifted or zero-filled buffer cannot imitate.
char byte_at(std::size_t i, std::uint64_t seed) {
  return static_cast<char>(mix(i / 8 + seed) >> (8 * (i % 8)));
}

std::size_t mismatches(const std::vector<char>& v, std::uint64_t seed) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < v.size(); ++i) bad += v[i] != byte_at(i, seed);
  return bad;
}
} // namespace

TEST_CASE("a 64 MiB task and a 64 MiB result", "[serialization][large]") {
  foreman::master_worker<std::vector<char>, std::string> pool;
  std::vector<std::vector<char>> tasks;
  if (pool.is_master()) {
    tasks.emplace_back(mib64);
    for (std::size_t i = 0; i < mib64; ++i) tasks[0][i] = byte_at(i, 1);
    tasks.emplace_back(std::vector<char>{'s', 'm', 'a', 'l', 'l'});
  }
  // A worker checks the large task it receives and answers with a large result of its own.
  auto fn = [](const std::vector<char>& in) {
    if (in.size() != mib64) return std::string(in.begin(), in.end());
    std::string out(mib64 + 3, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = byte_at(i, 2);
    out[0] = mismatches(in, 1) == 0 ? 'Y' : 'N'; // the worker's verdict on the task's bytes
    return out;
  };
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(r.size() == 2);
    REQUIRE(r[0].size() == mib64 + 3);
    CHECK(r[0][0] == 'Y');
    std::size_t bad = 0;
    for (std::size_t i = 1; i < r[0].size(); ++i) bad += r[0][i] != byte_at(i, 2);
    CHECK(bad == 0);
    CHECK(r[1] == "small");
  }
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
  foreman::master_worker<drawing, drawing> pool;
  std::vector<drawing> tasks(12);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto first = std::make_shared<circle>(0.5 * static_cast<double>(i + 1));
    tasks[i].shapes.push_back(first);
    tasks[i].shapes.push_back(std::make_shared<labelled_square>(static_cast<double>(i), std::string(i + 1, 'e')));
    tasks[i].shapes.push_back(first);
  }
  // The worker checks the aliasing it received, then answers with shapes twice as large.
  auto fn = [](const drawing& d) {
    if (d.shapes.size() != 3 || d.shapes[0] != d.shapes[2] || d.shapes[0] == d.shapes[1])
      throw std::runtime_error("aliasing lost on the way to the worker");
    drawing out;
    auto c = std::make_shared<circle>(2 * dynamic_cast<const circle&>(*d.shapes[0]).r);
    const auto& sq = dynamic_cast<const labelled_square&>(*d.shapes[1]);
    out.shapes = {c, std::make_shared<labelled_square>(2 * sq.side, sq.label + "!"), c};
    return out;
  };
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
      REQUIRE(r[i].shapes.size() == 3);
      const auto* c = dynamic_cast<const circle*>(r[i].shapes[0].get());
      const auto* sq = dynamic_cast<const labelled_square*>(r[i].shapes[1].get());
      REQUIRE(c != nullptr);
      REQUIRE(sq != nullptr);
      CHECK(r[i].shapes[2] == r[i].shapes[0]);
      CHECK(c->r == static_cast<double>(i + 1));
      CHECK(sq->side == 2.0 * static_cast<double>(i));
      CHECK(sq->label == std::string(i + 1, 'e') + "!");
      CHECK(sq->area() == 4.0 * static_cast<double>(i * i));
    }
  }
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

TEST_CASE("structs holding raw pointers to polymorphic and plain objects, as Task and as Result", "[serialization]") {
  std::vector<std::unique_ptr<shape>> shapes; // the master's tasks point into these
  std::vector<holder> tasks;
  for (int i = 0; i < 30; ++i) {
    if (i % 2 == 0)
      shapes.push_back(std::make_unique<circle>(0.5 * (i + 1)));
    else
      shapes.push_back(std::make_unique<labelled_square>(static_cast<double>(i), std::string(i % 7 + 1, 'q')));
    tasks.push_back(holder{shapes.back().get(), i});
  }
  // A worker answers with a shape of its own, twice as large, kept until its process ends.
  auto fn = [](const holder& h) {
    static std::vector<std::unique_ptr<shape>> made;
    if (h.p == nullptr) throw std::runtime_error("no shape arrived");
    if (const auto* c = dynamic_cast<const circle*>(h.p))
      made.push_back(std::make_unique<circle>(2 * c->r));
    else {
      const auto& sq = dynamic_cast<const labelled_square&>(*h.p);
      made.push_back(std::make_unique<labelled_square>(2 * sq.side, sq.label + "!"));
    }
    return holder{made.back().get(), h.id + 1000};
  };
  foreman::master_worker<holder, holder> pool;
  const auto r = pool.run(tasks, fn);
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (int i = 0; i < 30; ++i) {
      INFO("task " << i);
      const holder& got = r[static_cast<std::size_t>(i)];
      CHECK(got.id == i + 1000);
      REQUIRE(got.p != nullptr);
      if (i % 2 == 0) {
        const auto* c = dynamic_cast<const circle*>(got.p);
        REQUIRE(c != nullptr);
        CHECK(c->r == 1.0 * (i + 1));
      } else {
        const auto* sq = dynamic_cast<const labelled_square*>(got.p);
        REQUIRE(sq != nullptr);
        CHECK(sq->side == 2.0 * i);
        CHECK(sq->label == std::string(i % 7 + 1, 'q') + "!");
      }
    }
  }

  std::vector<box> boxes(20);
  std::vector<box_holder> box_tasks;
  for (int i = 0; i < 20; ++i) {
    boxes[static_cast<std::size_t>(i)] = box{i * 0.25, "box" + std::to_string(i)};
    box_tasks.push_back(box_holder{&boxes[static_cast<std::size_t>(i)], i});
  }
  auto grow = [](const box_holder& h) {
    static std::vector<std::unique_ptr<box>> made;
    if (h.p == nullptr) throw std::runtime_error("no box arrived");
    made.push_back(std::make_unique<box>(box{h.p->side * 4, h.p->label + "+"}));
    return box_holder{made.back().get(), -h.id};
  };
  foreman::master_worker<box_holder, box_holder> box_pool;
  const auto grown = box_pool.run(box_tasks, grow);
  if (box_pool.is_master()) {
    REQUIRE(grown.size() == box_tasks.size());
    for (int i = 0; i < 20; ++i) {
      INFO("task " << i);
      const box_holder& got = grown[static_cast<std::size_t>(i)];
      CHECK(got.id == -i);
      REQUIRE(got.p != nullptr);
      CHECK(got.p->side == i * 1.0);
      CHECK(got.p->label == "box" + std::to_string(i) + "+");
    }
  }
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

// Sends twelve values of T made by `make` through a pool as Task and back as Result, and
// through an encoder and decoder (so that 1 rank, where the master runs every task, decodes too).
template <class T, class Make>
void round_trip(const char* name, Make make) {
  STATIC_REQUIRE(foreman::is_serializable_v<T>);
  INFO(name);
  std::vector<T> tasks;
  for (std::size_t n = 0; n < 12; ++n) tasks.push_back(make(n));
  for (const T& t : tasks) {
    std::vector<char> bytes;
    foreman::detail::encoder(bytes).put(t);
    foreman::detail::decoder in(bytes.data(), bytes.size());
    T back{};
    in.get(back);
    CHECK(in.exhausted());
    CHECK(back == t);
  }
  foreman::master_worker<T, T> pool;
  const auto r = pool.run(tasks, [](const T& t) { return t; });
  if (pool.is_master()) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t n = 0; n < tasks.size(); ++n) {
      INFO("task " << n);
      CHECK(r[n] == tasks[n]);
    }
  }
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
  round_trip<std::vector<P>>("vector", [](std::size_t n) { return points<std::vector<P>>(n, n == 11 ? 5000 : n); });
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

// ---- bodies: large contiguous values travel as messages of their own ------------------------------
TEST_CASE("bodies and inline values mixed in chunks, in both directions", "[serialization]") {
  // Sizes on both sides of the 32 KiB threshold, so that one message carries inline values and
  // several bodies, whose messages must be matched to the right items.
  const std::size_t threshold = foreman::detail::body_threshold / sizeof(double);
  std::vector<std::vector<double>> tasks;
  for (std::size_t i = 0; i < 40; ++i) {
    const std::size_t n = i % 4 == 0 ? 0 : i % 4 == 1 ? threshold - 1 : i % 4 == 2 ? threshold : threshold * 3 + i;
    std::vector<double> v(n);
    for (std::size_t k = 0; k < n; ++k) v[k] = static_cast<double>(mix(i * 1000003 + k) % 1000000);
    tasks.push_back(std::move(v));
  }
  // The result is a string whose size depends on the task's, so a body result may follow an
  // inline one and the other way round.
  auto fn = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    std::string out(v.size() % 3 == 0 ? v.size() * 4 : 16, 'r');
    const std::string head = std::to_string(v.size()) + ":" + std::to_string(static_cast<long long>(sum)) + ";";
    out.replace(0, head.size(), head);
    return out;
  };
  foreman::master_worker<std::vector<double>, std::string> pool;
  for (std::size_t chunk : {1, 3, 8}) {
    foreman::options opt;
    opt.chunk_size = chunk;
    opt.tasks_in_flight = 2;
    INFO("chunk_size " << chunk);
    const auto r = pool.run(tasks, fn, opt);
    if (!pool.is_master()) continue;
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i << " of " << tasks[i].size() << " doubles");
      CHECK(r[i] == fn(tasks[i]));
    }
  }
}

namespace {
// Counts the allocations of the vectors that use it (in this process).
long g_counted_allocations = 0;
template <class T>
struct counting_allocator {
  using value_type = T;
  counting_allocator() = default;
  template <class U>
  counting_allocator(const counting_allocator<U>&) {}
  T* allocate(std::size_t n) {
    ++g_counted_allocations;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const counting_allocator<U>&) const { return false; }
};
using counted_doubles = std::vector<double, counting_allocator<double>>;
} // namespace

TEST_CASE("run_into receives results into the storage the caller's elements hold", "[serialization]") {
  foreman::master_worker<std::uint64_t, counted_doubles> pool;
  const std::size_t big = foreman::detail::body_threshold / sizeof(double) * 2; // a body
  std::vector<std::uint64_t> tasks(24);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = i;
  auto fn = [big](std::uint64_t t) {
    if (t % 100 == 5) throw std::runtime_error("five");
    counted_doubles v(t % 3 == 0 ? 7 : big); // small ones travel inline
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<double>(t * 1000 + k);
    return v;
  };
  auto check = [&](const std::vector<counted_doubles>& r, std::uint64_t shift) {
    REQUIRE(r.size() == tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      INFO("task " << i);
      if (i == 5) {
        CHECK(r[i].empty()); // a failed task's element is Result{}, not the previous run's value
        continue;
      }
      REQUIRE(r[i].size() == (i % 3 == 0 ? 7 : big));
      CHECK(r[i].front() == static_cast<double>((i + shift) * 1000));
      CHECK(r[i].back() == static_cast<double>((i + shift) * 1000 + r[i].size() - 1));
    }
  };
  std::vector<counted_doubles> results(tasks.size(), counted_doubles(3, -1.0));
  results[5].assign(big, 42.0); // must not survive the failure
  auto run = [&] { // whether task_error was thrown (on the master only: workers just serve)
    try {
      pool.run_into(tasks, fn, results);
    } catch (const foreman::task_error& e) {
      return e.failures().size() == 1 && e.failures().front().index == 5;
    }
    return false;
  };
  CHECK(run() == pool.is_master());
  if (!pool.is_master()) {
    CHECK(results.empty());
    CHECK_FALSE(run());
    pool.run_outcomes(tasks, fn); // the master's third run
    return;
  }
  check(results, 0);
  // The same sizes again, other values: received where the previous results are, so the master
  // allocates no result storage at all (its workers do, in fn).
  for (auto& t : tasks) t += 300; // keeps t % 3 (the same sizes) and t % 100 (task 5 fails again)
  const long before = g_counted_allocations;
  CHECK(run());
  check(results, 300);
  if (pool.worker_count() == 0) return; // the master runs fn itself
  CHECK(g_counted_allocations == before);
  // Whereas run() builds every result afresh.
  const long before_run = g_counted_allocations;
  const auto fresh = pool.run_outcomes(tasks, fn);
  CHECK(fresh[7].value() == results[7]);
  CHECK(g_counted_allocations - before_run >= static_cast<long>(tasks.size()) - 1);
}

TEST_CASE("a function that writes into the result it is given reuses that object's storage", "[serialization]") {
  foreman::master_worker<std::uint64_t, counted_doubles> pool;
  const std::size_t big = foreman::detail::body_threshold / sizeof(double) * 2; // a body: held while it is sent
  std::vector<std::uint64_t> tasks(200);
  for (std::size_t i = 0; i < tasks.size(); ++i) tasks[i] = i;
  long calls = 0, calls_with_room = 0; // on this rank
  auto fn = [&](std::uint64_t t, counted_doubles& out) {
    ++calls;
    if (t == 5) {
      if (!out.empty()) out[0] = -7.0; // half-written, then thrown: none of it may reach the master
      throw std::runtime_error("five");
    }
    if (out.capacity() >= big) ++calls_with_room;
    out.resize(big);
    for (std::size_t k = 0; k < big; ++k) out[k] = static_cast<double>(t * 1000 + k);
  };
  foreman::options opt;
  opt.chunk_size = 2;
  opt.tasks_in_flight = 2;
  const long allocations_before = g_counted_allocations;
  const auto outcomes = pool.run_outcomes(tasks, fn, opt);
  const long allocations = g_counted_allocations - allocations_before;
  // Per rank: fn's calls, those that found room in their result object, the allocations made.
  std::vector<long> mine{calls, calls_with_room, allocations};
  std::vector<std::vector<long>> all;
  boost::mpi::gather(boost::mpi::communicator(), mine, all, 0);
  if (!pool.is_master()) return;
  REQUIRE(outcomes.size() == tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    INFO("task " << i);
    if (i == 5) {
      CHECK_FALSE(outcomes[i].ok());
      CHECK(outcomes[i].failure().message == "five");
      continue;
    }
    REQUIRE(outcomes[i].ok());
    const counted_doubles& r = outcomes[i].value();
    REQUIRE(r.size() == big);
    CHECK(r.front() == static_cast<double>(i * 1000));
    CHECK(r.back() == static_cast<double>(i * 1000 + big - 1));
  }
  if (pool.worker_count() == 0) return; // the master ran fn itself, into the fresh elements of a new vector
  long total_calls = 0;
  for (int w = 1; w <= pool.worker_count(); ++w) {
    const std::vector<long>& counts = all[static_cast<std::size_t>(w)];
    INFO("worker " << w << ": " << counts[0] << " calls, " << counts[1] << " with room, " << counts[2]
                   << " allocations");
    total_calls += counts[0];
    // A worker holds at most 2 replies x 2 results while they are sent; every other call reuses one.
    CHECK(counts[2] <= 4);
    CHECK(counts[1] >= counts[0] - 4 - 1); // - 1: task 5 may have been the one to find no room
  }
  CHECK(total_calls == static_cast<long>(tasks.size()));
}
