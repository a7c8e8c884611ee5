"""Summarises a benchmark run (scripts/bench.sh): medians with min and max, the ratios of the
performance issue's floors, the machine. Reads the JSON lines of bench.cpp and futures_bench.py.

    python3 benchmarks/report.py build-bench/bench-raw.jsonl build-bench/bench-results.json
"""
import json
import platform
import statistics
import subprocess
import sys


def sh(command):
    try:
        return subprocess.run(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001 - a missing tool only leaves a field empty
        return ""


def environment():
    boost = sh("grep -m1 '#define BOOST_LIB_VERSION' /usr/include/boost/version.hpp")
    cpu = sh("grep -m1 'model name' /proc/cpuinfo").split(":")[-1].strip()
    return {
        "machine": "%s, %s cores, %s" % (cpu, sh("nproc"), platform.platform()),
        "compiler": sh("c++ --version").splitlines()[0] if sh("c++ --version") else "",
        "mpi": sh("mpirun --version").splitlines()[0] if sh("mpirun --version") else "",
        "boost": boost.split('"')[1].replace("_", ".") if '"' in boost else "",
        "python_mpi4py": sh("/usr/bin/python3 -c 'import mpi4py; print(mpi4py.__version__)'"),
    }


def metric(r):
    """(value, unit, higher is better) of one measurement, from its seconds `s`."""
    w = r["workload"]
    if w in ("tiny", "struct"):
        return (lambda s: r["tasks"] / s), "tasks/s"
    if w == "compute":
        return (lambda s: r["serial_seconds"] / s), "speedup"
    if w in ("payload", "pingpong"):
        return (lambda s: 2.0 * r["bytes"] * r["tasks"] / s / 1e6), "MB/s"
    if w == "latency":
        return (lambda s: s / r["tasks"] * 1e6), "us/task"
    raise ValueError(w)


def main():
    # Runs of one measurement (scripts/bench.sh interleaves implementations, one repetition per
    # run) are merged: their repetitions together, verified only if every run was.
    rows = []
    for line in open(sys.argv[1]):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        key = (r["workload"], r["impl"], r["ranks"], r["bytes"])
        same = next((x for x in rows if (x["workload"], x["impl"], x["ranks"], x["bytes"]) == key), None)
        if same is None:
            rows.append(r)
            continue
        same["seconds"] += r["seconds"]
        same["verified"] = same["verified"] and r["verified"]
        if r.get("allocs_per_task", -1) >= 0:
            same["allocs_per_task"] = min(x for x in (same.get("allocs_per_task", -1), r["allocs_per_task"]) if x >= 0)
    table = []
    for r in rows:
        f, unit = metric(r)
        values = sorted(f(s) for s in r["seconds"])
        r["unit"] = unit
        r["median"] = statistics.median(values)
        r["min"], r["max"] = values[0], values[-1]
        table.append(r)

    def get(workload, impl, ranks, size=None):
        for r in table:
            if r["workload"] == workload and r["impl"] == impl and r["ranks"] == ranks and \
                    (size is None or r["bytes"] == size):
                return r
        return None

    env = environment()
    print("\nforeman benchmark — %s" % env["machine"])
    print("%s | %s | Boost %s | mpi4py %s\n" % (env["compiler"], env["mpi"], env["boost"], env["python_mpi4py"]))
    print("%-9s %-19s %5s %10s %14s %14s %14s %-8s %s" %
          ("workload", "implementation", "ranks", "bytes", "median", "min", "max", "unit", "verified"))
    for r in table:
        print("%-9s %-19s %5d %10s %14.6g %14.6g %14.6g %-8s %s" %
              (r["workload"], r["impl"], r["ranks"], r["bytes"] or "", r["median"], r["min"], r["max"], r["unit"],
               "yes" if r["verified"] else "NO"))

    floors = []

    def floor(what, numerator, denominator, at_least):
        if numerator is None or denominator is None:
            floors.append({"floor": what, "ratio": None, "at_least": at_least, "met": None})
            return
        ratio = numerator["median"] / denominator["median"]
        # The machine switches between states about 2-4x apart in per-message speed, sometimes
        # between two runs a second apart: a side whose repetitions spread that far was measured
        # in both, and its ratio says little.
        spread = max(r["max"] / r["min"] for r in (numerator, denominator))
        floors.append({"floor": what, "ratio": ratio, "at_least": at_least, "met": ratio >= at_least,
                       "mixed_states": spread > 1.5})

    for n, want in ((2, 2.0), (3, 3.0)):
        floor("tiny -n %d: foreman / raw MPI loop" % n, get("tiny", "foreman", n), get("tiny", "raw", n), want)
    for n in (2, 3):
        floor("tiny -n %d: foreman / mpi4py.futures chunksize 256" % n, get("tiny", "foreman", n),
              get("tiny", "mpi4py_futures_256", n), 5.0)
        floor("struct -n %d: foreman / Boost.MPI loop" % n, get("struct", "foreman", n), get("struct", "boost", n),
              2.0)
        floor("tiny -n %d, one task per message: foreman / raw MPI loop" % n, get("tiny", "foreman_plain", n),
              get("tiny", "raw", n), 0.7)
        # Not a floor of the issue: how close a loop that polls (as foreman must) can come.
        floor("  (reference) tiny -n %d: raw loop polling / raw loop blocking" % n, get("tiny", "raw_poll", n),
              get("tiny", "raw", n), 0.7)
        floor("struct -n %d, one task per message: foreman / Boost.MPI loop" % n, get("struct", "foreman_plain", n),
              get("struct", "boost", n), 1.0)
    compute = get("compute", "foreman", 3)
    floors.append({"floor": "compute -n 3: foreman speedup over serial", "ratio": compute and compute["median"],
                   "at_least": 1.9, "met": compute is not None and compute["median"] >= 1.9})
    for r in table:
        if r["workload"] == "payload" and r["impl"] == "foreman" and r["bytes"] >= 1 << 20:
            # The ping-pong of the same buffers moves the payload run's data; the ping-pong of one
            # buffer moves the same bytes again and again, which stay in the cache up to its size.
            floor("payload %d B: foreman / ping-pong of the same buffers" % r["bytes"], r,
                  get("pingpong", "raw_tasks", 2, r["bytes"]), 0.8)
            floor("payload %d B: foreman / ping-pong of one buffer" % r["bytes"], r,
                  get("pingpong", "raw", 2, r["bytes"]), 0.8)
    tiny = get("tiny", "foreman", 2)
    floors.append({"floor": "heap allocations per task on the master (tiny, -n 2)",
                   "ratio": tiny and tiny["allocs_per_task"], "at_most": 0.01,
                   "met": tiny is not None and 0 <= tiny["allocs_per_task"] <= 0.01})

    print("\nfloors (ratios of medians from this run)")
    for f in floors:
        bound = ("<= %g" % f["at_most"]) if "at_most" in f else (">= %g" % f["at_least"])
        value = "n/a" if f["ratio"] is None else "%.3g" % f["ratio"]
        status = "n/a" if f["met"] is None else ("met" if f["met"] else "NOT MET")
        mixed = "  (repetitions in different machine states: unreliable)" if f.get("mixed_states") else ""
        print("  %-62s %10s  (%s)  %s%s" % (f["floor"], value, bound, status, mixed))
    unverified = [r for r in table if not r["verified"]]
    if unverified:
        print("\nWRONG RESULTS in: " + ", ".join("%s %s -n %d" % (r["workload"], r["impl"], r["ranks"])
                                                for r in unverified))
    with open(sys.argv[2], "w") as out:
        json.dump({"environment": env, "measurements": table, "floors": floors}, out, indent=1)
    print("\nwritten: %s" % sys.argv[2])
    return 1 if unverified else 0


if __name__ == "__main__":
    sys.exit(main())
