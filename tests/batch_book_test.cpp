// The master's account of a grouped run's batches (detail/batch_book.hpp), without MPI: batches
// cut from the run's tasks, answers filed task by task, tasks a group did not run sent again
// uncharged, a batch failed whole, fail_fast's stop, and a task or result that cannot be moved
// failing alone. A fake top job (`submit` keeps each batch under the next ticket) and a fake
// codec (a task as its 4 bytes, a result as its 8). This program links no MPI.
#include "catch.hpp"

#include <foreman/detail/batch_book.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

using foreman::run_info;
using foreman::task_failure;
using foreman::detail::batch;
using foreman::detail::batch_book;
using foreman::detail::batch_reply;
using foreman::detail::batch_span;
using foreman::detail::relay_item;
using foreman::detail::relay_options;

namespace {

using reply = batch_reply<long>;
using answer = foreman::outcome<reply>;

// A codec of raw bytes: task i (an int) as its 4 bytes, a result (a long) as its 8; the tasks in
// `unsendable` cannot be encoded, the results of the tasks in `unreadable` cannot be decoded.
struct fake_codec {
  const std::vector<int>& tasks;
  std::set<std::size_t> unsendable, unreadable;
  std::optional<std::string> encode(std::size_t index, std::vector<char>& bytes) const {
    if (unsendable.count(index)) return "task " + std::to_string(index) + " could not be encoded";
    const char* p = reinterpret_cast<const char*>(&tasks[index]);
    bytes.insert(bytes.end(), p, p + sizeof(int));
    return std::nullopt;
  }
  std::optional<std::string> decode(std::size_t index, const std::vector<char>& values, std::size_t& at,
                                    long& into) const {
    REQUIRE(at + sizeof(long) <= values.size());
    std::memcpy(&into, values.data() + at, sizeof(long));
    at += sizeof(long);
    if (unreadable.count(index)) return "the result of task " + std::to_string(index) + " could not be decoded";
    return std::nullopt;
  }
};

// The tasks a batch holds, decoded.
std::vector<int> tasks_of(const batch<int>& b) {
  std::vector<int> out(static_cast<std::size_t>(b.count));
  REQUIRE(b.tasks.size() == out.size() * sizeof(int));
  if (!out.empty()) std::memcpy(out.data(), b.tasks.data(), b.tasks.size());
  return out;
}

// A run of `n` tasks (task i is 100 + i) and what the book files into, with a fake top job.
struct fake_run {
  std::vector<int> tasks;
  std::vector<long> results;
  run_info info;
  std::vector<task_failure> failures;
  std::map<std::uint64_t, batch<int>> submitted; // by ticket
  std::uint64_t next_ticket = 0;
  std::vector<std::size_t> done; // on_done's indices, in order
  std::vector<std::size_t> names;
  fake_codec codec{tasks, {}, {}};
  std::function<std::uint64_t(batch<int>&&)> submit = [this](batch<int>&& b) {
    submitted[next_ticket] = std::move(b);
    return next_ticket++;
  };
  std::function<void(std::size_t, std::chrono::steady_clock::time_point)> on_done =
      [this](std::size_t index, std::chrono::steady_clock::time_point) { done.push_back(index); };

  explicit fake_run(std::size_t n, bool renamed = false) : results(n) {
    for (std::size_t i = 0; i < n; ++i) tasks.push_back(100 + static_cast<int>(i));
    info.tasks.resize(n);
    if (renamed)
      for (std::size_t i = 0; i < n; ++i) names.push_back(1000 + 2 * i);
  }
  batch_book<int, long> book(bool fail_fast = false) {
    relay_options carried;
    carried.max_attempts = 7;
    return batch_book<int, long>(tasks, names.empty() ? nullptr : &names, carried, fail_fast, results, info, failures);
  }
  void send(batch_book<int, long>& b, std::size_t size) { b.send_next(size, codec, on_done, submit); }
  void file(batch_book<int, long>& b, std::uint64_t ticket, int sub_master, answer a) {
    b.file(b.take(ticket), sub_master, std::move(a), codec, on_done, submit);
  }
};

// The answer a group gives when it ran every task of `b`: task t's result is 2 t, on worker 5.
reply ran_all(const batch<int>& b) {
  reply r;
  for (int t : tasks_of(b)) {
    relay_item<long> item;
    item.worker = 5;
    item.seconds = 0.25;
    r.items.push_back(item);
    const long value = 2L * t;
    const char* p = reinterpret_cast<const char*>(&value);
    r.values.insert(r.values.end(), p, p + sizeof value);
  }
  return r;
}

// `r` with item i failed (its result taken out of the values).
void fail_item(reply& r, std::size_t i, relay_item<long> failed) {
  std::size_t at = 0;
  for (std::size_t k = 0; k < i; ++k)
    if (r.items[k].ok()) at += sizeof(long);
  if (r.items[i].ok())
    r.values.erase(r.values.begin() + static_cast<std::ptrdiff_t>(at),
                   r.values.begin() + static_cast<std::ptrdiff_t>(at + sizeof(long)));
  r.items[i] = std::move(failed);
}

relay_item<long> failed_item(std::string type, std::string message, int worker) {
  relay_item<long> item;
  item.failed = true;
  item.type = std::move(type);
  item.message = std::move(message);
  item.worker = worker;
  return item;
}

relay_item<long> not_run_item() {
  relay_item<long> item;
  item.not_run = true;
  return item;
}

} // namespace

TEST_CASE("batches are cut in order, the last one shorter, each carrying the options and its indices",
          "[batch_book]") {
  fake_run run(10);
  auto book = run.book();
  while (book.unbatched()) run.send(book, 4);
  REQUIRE(run.submitted.size() == 3);
  CHECK(book.open_batches() == 3);
  CHECK(tasks_of(run.submitted[0]) == std::vector<int>{100, 101, 102, 103});
  CHECK(tasks_of(run.submitted[2]) == std::vector<int>{108, 109});
  CHECK(run.submitted[2].first == 8);
  CHECK(run.submitted[2].indices.empty());
  CHECK(run.submitted[1].opt.max_attempts == 7);
  const batch_span last = book.take(2);
  CHECK(last.count == 2);
  CHECK(last[0] == 8);
  CHECK(last[1] == 9);
  CHECK(book.open_batches() == 2);
  CHECK_THROWS_AS(book.take(2), foreman::error); // answered once
  CHECK_THROWS_AS(book.take(17), foreman::error);
}

TEST_CASE("a resumed run's batches carry the tasks' indices in the whole list", "[batch_book]") {
  fake_run run(5, true);
  auto book = run.book();
  run.send(book, 3);
  run.send(book, 3);
  CHECK(run.submitted[1].first == 3); // the position in this run's list
  CHECK(run.submitted[1].indices == std::vector<std::uint64_t>{1006, 1008});
  CHECK(book.name_of(4) == 1008);
}

TEST_CASE("an answer is filed task by task: results, failures, workers, seconds, one attempt each", "[batch_book]") {
  fake_run run(6);
  auto book = run.book();
  run.send(book, 3);
  run.send(book, 3);
  reply r = ran_all(run.submitted[1]);
  fail_item(r, 1, failed_item("std::runtime_error", "four", 6));
  r.items[1].seconds = 0.5;
  r.losses.push_back(foreman::detail::relay_loss{5, 1, 0.5, 0.25, 2, "gone"});
  r.retries = 3;
  run.file(book, 1, 4, answer(std::move(r)));
  CHECK(run.done == std::vector<std::size_t>{3, 4, 5});
  CHECK(run.results[3] == 206);
  CHECK(run.results[5] == 210); // read past the failed item's (absent) value
  CHECK(run.results[0] == 0);   // batch 0 not answered
  CHECK(run.info.tasks[3].worker == 5);
  CHECK(run.info.tasks[3].seconds == 0.25);
  CHECK(run.info.tasks[3].attempts == 1);
  CHECK_FALSE(run.info.tasks[3].failed);
  CHECK(run.info.tasks[4].failed);
  CHECK(run.info.tasks[4].worker == 6);
  CHECK(run.info.tasks[4].seconds == 0.5);
  REQUIRE(run.failures.size() == 1);
  CHECK(run.failures[0].index == 4);
  CHECK(run.failures[0].worker == 6);
  CHECK(run.failures[0].type == "std::runtime_error");
  CHECK(run.failures[0].message == "four");
  REQUIRE(run.info.losses.size() == 1);
  CHECK(run.info.losses[0].worker == 5);
  CHECK(run.info.losses[0].tasks_held == 2);
  CHECK(run.info.lost_workers == std::vector<int>{5});
  CHECK(run.info.retries == 3);
  CHECK(run.submitted.size() == 2); // nothing sent again
  CHECK(run.info.tasks[0].attempts == 0);
}

TEST_CASE("tasks a group did not run go again in a batch of their own, charged no attempt", "[batch_book]") {
  fake_run run(4, true);
  auto book = run.book();
  run.send(book, 4);
  reply r = ran_all(run.submitted[0]);
  fail_item(r, 1, not_run_item());
  fail_item(r, 3, not_run_item());
  run.file(book, 0, 1, answer(std::move(r)));
  CHECK(run.done == std::vector<std::size_t>{0, 2});
  CHECK(run.results[2] == 204);
  CHECK(run.info.tasks[1].attempts == 0);
  CHECK(run.info.tasks[3].attempts == 0);
  CHECK(run.info.retries == 2);
  REQUIRE(run.submitted.size() == 2);
  CHECK(tasks_of(run.submitted[1]) == std::vector<int>{101, 103});
  CHECK(run.submitted[1].indices == std::vector<std::uint64_t>{1002, 1006});
  // the other group runs them
  run.file(book, 1, 4, answer(ran_all(run.submitted[1])));
  CHECK(run.done == std::vector<std::size_t>{0, 2, 1, 3});
  CHECK(run.results == std::vector<long>{200, 202, 204, 206});
  CHECK(run.info.tasks[3].attempts == 1);
  CHECK(run.failures.empty());
  CHECK(book.open_batches() == 0);
}

TEST_CASE("a batch failed whole fails each of its tasks, on its sub-master's rank", "[batch_book]") {
  fake_run run(5);
  auto book = run.book();
  run.send(book, 2);
  run.send(book, 2);
  run.file(book, 1, 4, answer(task_failure{0, 4, "foreman::worker_lost", "sub-master 4 lost"}));
  REQUIRE(run.failures.size() == 2);
  CHECK(run.failures[0].index == 2);
  CHECK(run.failures[1].index == 3);
  CHECK(run.failures[1].worker == 4);
  CHECK(run.failures[1].type == "foreman::worker_lost");
  CHECK(run.info.tasks[2].failed);
  CHECK(run.info.tasks[2].attempts == 1);
  CHECK(run.done == std::vector<std::size_t>{2, 3});
  CHECK(book.unbatched()); // task 4 still to batch: no fail_fast
}

TEST_CASE("an answer with the wrong number of items fails its batch", "[batch_book]") {
  fake_run run(3);
  auto book = run.book();
  run.send(book, 3);
  reply r = ran_all(run.submitted[0]);
  r.items.pop_back();
  run.file(book, 0, 1, answer(std::move(r)));
  REQUIRE(run.failures.size() == 3);
  CHECK(run.failures[0].message.find("a batch of 3 tasks with 2 results") != std::string::npos);
  CHECK(run.results == std::vector<long>{0, 0, 0});
}

TEST_CASE("fail_fast: the first failure stops the run; what was not filed is cancelled", "[batch_book]") {
  fake_run run(9, true);
  auto book = run.book(true);
  run.send(book, 3);
  run.send(book, 3);
  reply r = ran_all(run.submitted[0]);
  fail_item(r, 0, failed_item("std::logic_error", "no", 5));
  fail_item(r, 2, not_run_item());
  run.file(book, 0, 1, answer(std::move(r)));
  CHECK(book.stopped() == "not run: task 1000 failed first, and options::fail_fast stops the run at the first failure");
  CHECK_FALSE(book.unbatched());
  CHECK(run.submitted.size() == 2); // task 2 not sent again
  CHECK(run.results[1] == 202);     // filed after the stop: its batch had run it
  // batch 1 is dropped (the job's cancel); the caller cancels the rest
  book.cancel_unfiled(run.on_done);
  REQUIRE(run.failures.size() == 1 + 7);
  for (std::size_t k = 1; k < run.failures.size(); ++k) {
    CHECK(run.failures[k].type == "foreman::cancelled");
    CHECK(run.failures[k].message == book.stopped());
    CHECK(run.info.tasks[run.failures[k].index].failed);
  }
  CHECK(run.failures[1].index == 2);
  CHECK(run.failures.back().index == 8);
  CHECK(run.done.size() == 9);
}

TEST_CASE("without fail_fast nothing is cancelled", "[batch_book]") {
  fake_run run(2);
  auto book = run.book();
  book.cancel_unfiled(run.on_done);
  CHECK(run.failures.empty());
  CHECK(run.done.empty());
}

TEST_CASE("a task that cannot be encoded fails alone; its batch lists the others", "[batch_book]") {
  fake_run run(8);
  run.codec.unsendable = {0, 2, 7};
  auto book = run.book();
  run.send(book, 4); // 0 1 2 3: 0 and 2 fail
  run.send(book, 4); // 4 5 6 7: 7 fails, the others stay a range
  REQUIRE(run.failures.size() == 3);
  CHECK(run.failures[0].index == 0);
  CHECK(run.failures[0].type == "foreman::serialization_error");
  CHECK(run.failures[0].message == "task 0 could not be encoded");
  CHECK(run.failures[0].worker == 0);
  CHECK(run.failures[2].index == 7);
  CHECK(run.info.tasks[2].attempts == 1);
  CHECK(run.done == std::vector<std::size_t>{0, 2, 7});
  REQUIRE(run.submitted.size() == 2);
  CHECK(tasks_of(run.submitted[0]) == std::vector<int>{101, 103});
  CHECK(run.submitted[0].indices == std::vector<std::uint64_t>{1, 3});
  CHECK(tasks_of(run.submitted[1]) == std::vector<int>{104, 105, 106});
  CHECK(run.submitted[1].first == 4);
  CHECK(run.submitted[1].indices.empty());
  run.file(book, 0, 1, answer(ran_all(run.submitted[0])));
  run.file(book, 1, 4, answer(ran_all(run.submitted[1])));
  CHECK(run.results == std::vector<long>{0, 202, 0, 206, 208, 210, 212, 0});
  CHECK(run.failures.size() == 3);
}

TEST_CASE("a batch whose every task cannot be encoded is not sent", "[batch_book]") {
  fake_run run(2);
  run.codec.unsendable = {0, 1};
  auto book = run.book();
  run.send(book, 4);
  CHECK(run.submitted.empty());
  CHECK_FALSE(book.unbatched());
  CHECK(run.failures.size() == 2);
}

TEST_CASE("fail_fast: a task that cannot be encoded stops the run before its batch is sent", "[batch_book]") {
  fake_run run(6);
  run.codec.unsendable = {1};
  auto book = run.book(true);
  run.send(book, 4);
  CHECK(run.submitted.empty());
  CHECK_FALSE(book.stopped().empty());
  book.cancel_unfiled(run.on_done);
  REQUIRE(run.failures.size() == 6);
  CHECK(run.failures[0].type == "foreman::serialization_error");
  CHECK(run.failures[1].index == 0);
  CHECK(run.failures[1].type == "foreman::cancelled");
}

TEST_CASE("a result that cannot be decoded fails its task alone; the next result is read right", "[batch_book]") {
  fake_run run(4);
  run.codec.unreadable = {1};
  auto book = run.book();
  run.send(book, 4);
  run.file(book, 0, 1, answer(ran_all(run.submitted[0])));
  REQUIRE(run.failures.size() == 1);
  CHECK(run.failures[0].index == 1);
  CHECK(run.failures[0].type == "foreman::serialization_error");
  CHECK(run.failures[0].worker == 5); // where it ran
  CHECK(run.info.tasks[1].failed);
  CHECK(run.info.tasks[1].attempts == 1);
  CHECK(run.results[2] == 204);
  CHECK(run.results[3] == 206);
}

TEST_CASE("tasks sent again that cannot be encoded now fail alone", "[batch_book]") {
  fake_run run(3);
  auto book = run.book();
  run.send(book, 3);
  reply r = ran_all(run.submitted[0]);
  fail_item(r, 0, not_run_item());
  fail_item(r, 1, not_run_item());
  run.codec.unsendable = {0};
  run.file(book, 0, 1, answer(std::move(r)));
  REQUIRE(run.failures.size() == 1);
  CHECK(run.failures[0].index == 0);
  REQUIRE(run.submitted.size() == 2);
  CHECK(tasks_of(run.submitted[1]) == std::vector<int>{101});
  CHECK(run.info.retries == 1);
}
