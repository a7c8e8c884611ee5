// branch_and_bound: work that creates work. The 0/1 knapsack problem solved by branch and bound:
// each task is a node of the search tree, a worker expands it into its children, and the master
// submits the children worth exploring as the answers come in.
//
//   mpirun -n 4 ./branch_and_bound [items]
//
// The problem: 50 items (or `items`, 1 to 64: fewer make a smaller search), each with a weight
// and a value, and a knapsack that holds at most a given weight. Which items should go in to
// carry the most value? Trying all 2^50 choices is out of the question. Branch and bound decides the items one at a time (take it, or leave it: two branches)
// and, for each partial choice, computes a bound: no way of completing it can be worth more. The
// best complete choice found so far (the incumbent) then prunes every branch whose bound cannot
// beat it. The program checks its answer against dynamic programming, which solves the same
// problem serially in another way.
//
// With foreman the search runs as a job (pool.start()): it stays open while the master submits
// tasks, so a child found by one worker is sent to the first free worker at once. There is no
// generation barrier: nobody waits for the other nodes of the same depth.
#include <foreman/foreman.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

// ---- the problem -------------------------------------------------------------------------------

struct item {
  int weight;
  int value;
};

// The instance: every rank builds the same one from the same seed, so only the nodes travel.
// The numbers come from splitmix64, written out here, so that every compiler and standard
// library makes the same instance (std::uniform_int_distribution may differ between them).
struct knapsack {
  std::vector<item> items; // sorted by value per unit of weight, best first (see upper_bound())
  int capacity = 0;

  explicit knapsack(std::uint64_t seed, int count = 50) {
    auto next_random = [&seed] {
      std::uint64_t z = (seed += 0x9e3779b97f4a7c15u);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
      return z ^ (z >> 31);
    };
    long total = 0;
    for (int i = 0; i < count; ++i) {
      const int weight = 100 + static_cast<int>(next_random() % 901); // 100 .. 1000
      // A value tied to the weight makes every item about as good as any other: the hard kind.
      items.push_back({weight, weight + 100});
      total += weight;
    }
    capacity = static_cast<int>(total / 2);
    std::stable_sort(items.begin(), items.end(), [](const item& a, const item& b) {
      return long(a.value) * b.weight > long(b.value) * a.weight; // a.value/a.weight > b.value/b.weight
    });
  }
};

// ---- the tasks and the results -----------------------------------------------------------------

// A node of the search tree: the items 0 .. level-1 are decided, the others not yet. A plain
// struct of numbers: foreman sends it as its bytes.
struct node {
  int level = 0;           // how many items are decided
  int weight = 0;          // the weight of the items taken so far
  int value = 0;           // and their value
  std::uint64_t taken = 0; // bit i set: item i is taken
  int bound = 0;           // no completion of this node is worth more than this
};

// What a worker sends back for one node.
struct expansion {
  std::vector<node> children; // the children still worth exploring, with their bounds
  int best_value = 0;         // the best complete choice seen while expanding (see fill())
  std::uint64_t best_taken = 0;

  // A struct holding a std::vector is not sent as its bytes: it says what to send.
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& children& best_value& best_taken;
  }
};

// The two estimates branch and bound lives on, for node n. Both fill the knapsack with the
// undecided items, best value per weight first:
// - the bound: take items while they fit, then the fitting fraction of the first that does not
//   (no choice of whole items can beat a knapsack filled to the brim with the best items);
// - a complete choice (a lower bound): the same fill, skipping the items that do not fit.
// Returns the bound; `choice` gets the complete choice, as a node with every item decided.
int fill(const knapsack& k, const node& n, node& choice) {
  const int count = static_cast<int>(k.items.size());
  choice = n;
  choice.level = count;
  int weight = n.weight, value = n.value, i = n.level;
  for (; i < count && weight + k.items[i].weight <= k.capacity; ++i) {
    weight += k.items[i].weight;
    value += k.items[i].value;
  }
  // Item i is the first that does not fit (if any): a fraction of it completes the bound.
  const int bound = i < count ? value + (k.capacity - weight) * k.items[i].value / k.items[i].weight : value;
  for (int j = n.level; j < count; ++j) {
    if (choice.weight + k.items[j].weight > k.capacity) continue;
    choice.weight += k.items[j].weight;
    choice.value += k.items[j].value;
    choice.taken |= std::uint64_t{1} << j;
  }
  return bound;
}

// The work of a worker: decide the next item, both ways.
expansion expand(const knapsack& k, const node& parent) {
  expansion out;
  out.best_value = parent.value; // the parent with no more items is a complete choice too
  out.best_taken = parent.taken;
  const item& next = k.items[static_cast<std::size_t>(parent.level)];
  for (const bool take : {true, false}) {
    node child = parent;
    child.level = parent.level + 1;
    if (take) {
      if (child.weight + next.weight > k.capacity) continue; // does not fit: no such branch
      child.weight += next.weight;
      child.value += next.value;
      child.taken |= std::uint64_t{1} << parent.level;
    }
    node choice;
    child.bound = fill(k, child, choice);
    if (choice.value > out.best_value) {
      out.best_value = choice.value;
      out.best_taken = choice.taken;
    }
    // A child whose complete choice reaches its bound needs no search: that choice is its best,
    // and it was just reported. So does a child with every item decided.
    if (child.level < static_cast<int>(k.items.size()) && child.bound > choice.value) out.children.push_back(child);
  }
  return out;
}

// The serial answer, by dynamic programming: best[c] is the most value that fits in weight c
// using the items seen so far. Another method entirely, so it checks the search.
int solve_serially(const knapsack& k) {
  std::vector<int> best(static_cast<std::size_t>(k.capacity) + 1, 0);
  for (const item& it : k.items)
    for (int c = k.capacity; c >= it.weight; --c)
      best[static_cast<std::size_t>(c)] =
          std::max(best[static_cast<std::size_t>(c)], best[static_cast<std::size_t>(c - it.weight)] + it.value);
  return best[static_cast<std::size_t>(k.capacity)];
}

int main(int argc, char* argv[]) {
  boost::mpi::environment env(argc, argv); // starts MPI on this rank
  // The number of items: each one more can double the search (30 take about 1,000 times fewer
  // nodes than 50). The items are a prefix of the same random numbers, from the same seed.
  char* end = nullptr;
  const long items = argc > 1 ? std::strtol(argv[1], &end, 10) : 50;
  if (argc > 2 || (argc > 1 && *end != '\0') || items < 1 || items > 64) { // `taken` has 64 bits
    if (boost::mpi::communicator().rank() == 0)
      fmt::print(stderr, "usage: mpirun -n 4 {} [items: 1 to 64, default 50]\n", argv[0]);
    return 2;
  }
  const knapsack problem(13, static_cast<int>(items)); // the same instance on every rank

  // A task is a node, a result its expansion.
  foreman::master_worker<node, expansion> pool;

  // Every rank starts the job with the function the workers run. On a worker, start() serves
  // nodes until the master ends the job, then returns a job on which is_master() is false.
  auto job = pool.start([&problem](const node& n) { return expand(problem, n); });
  if (!job.is_master()) return 0;

  // The master: submit the root (nothing decided yet), then take the expansions as they arrive.
  node root;
  node first_choice;
  root.bound = fill(problem, root, first_choice);
  int best_value = first_choice.value; // the incumbent: the best complete choice known
  std::uint64_t best_taken = first_choice.taken;
  long expanded = 0, pruned = 0;
  job.submit(root);

  // pending() counts the nodes submitted whose expansion was not taken yet. A worker that sends
  // its answer gets its next node right away, while the master is still in this loop.
  while (job.pending() > 0) {
    foreman::completion<expansion> done = job.next(); // waits for the next expansion, any worker
    const expansion& e = done.result.value();         // value() throws if the task failed
    ++expanded;
    if (e.best_value > best_value) { // a better complete choice: a new incumbent
      best_value = e.best_value;
      best_taken = e.best_taken;
    }
    for (const node& child : e.children) {
      if (child.bound <= best_value) { // cannot beat the incumbent: the whole branch is dropped
        ++pruned;
        continue;
      }
      // The priority is the depth: deeper nodes go first. The search then reaches complete
      // choices soon (the incumbent improves early) and keeps few nodes open at a time.
      job.submit(child, child.level);
    }
  }
  job.close(); // ends the job on the workers (leaving the scope would too)

  // Check the answer: the chosen items fit, are worth what was claimed, and nothing is better.
  int weight = 0, value = 0;
  for (std::size_t i = 0; i < problem.items.size(); ++i)
    if ((best_taken >> i) & 1) {
      weight += problem.items[i].weight;
      value += problem.items[i].value;
    }
  const int serial = solve_serially(problem);

  fmt::print("Knapsack: {} items, capacity {}\n", problem.items.size(), problem.capacity);
  fmt::print("Best value: {}\n", best_value);
  fmt::print("Nodes expanded: {} ({} children pruned)\n", expanded, pruned);
  if (weight > problem.capacity || value != best_value || best_value != serial) {
    fmt::print(stderr, "WRONG: the search found {} (items of weight {} and value {}), the serial answer is {}\n",
               best_value, weight, value, serial);
    return 1;
  }
  fmt::print("Matches the serial answer (dynamic programming).\n");
}
