// Must compile: the positive control of the compile-failure tests. It is built through the same
// mechanism (cmake --build --target), so a broken mechanism fails this test instead of letting
// the negative tests pass for the wrong reason. Each negative test differs from this program in
// one respect.
#include <foreman/foreman.hpp>

#include <string>
#include <vector>

struct task {
  std::string text;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& text;
  }
};

struct result {
  result() = default;
  explicit result(int v) : value(v) {}
  int value = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& value;
  }
};

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv);
  foreman::master_worker<task, result> pool;
  pool.run(std::vector<task>{}, [](const task& t) { return result{static_cast<int>(t.text.size())}; });
}
