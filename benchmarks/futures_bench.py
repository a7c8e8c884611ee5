"""mpi4py.futures baseline of foreman's benchmark (benchmarks/bench.cpp), same tasks.

    mpirun -n N python3 -m mpi4py.futures benchmarks/futures_bench.py tiny|struct CHUNKSIZE|submit [REPS] [TASKS]

Rank 0 runs this script; the other ranks serve as the pool's workers. Each repetition maps the
tasks with MPIPoolExecutor.map(chunksize=CHUNKSIZE), checks every result, and the script prints one
JSON line in bench.cpp's format, with "impl": "mpi4py_futures_<CHUNKSIZE>". With "submit" instead
of a chunk size, each repetition submits every task with MPIPoolExecutor.submit() and takes the
results with concurrent.futures.as_completed() (what bench.cpp's "job" does with foreman's job
API): "impl": "mpi4py_futures_submit".
"""
import json
import sys
import time
from concurrent.futures import as_completed

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def tiny(x):
    return (x * x + 1) & 0xFFFFFFFFFFFFFFFF


def make_record(i):
    return (i, "item-%d" % (i * 7919 % 100003))


def process(record):
    return (record[0] * 3 + 1, record[1] + "/ok")


def main():
    workload = sys.argv[1]
    submit = sys.argv[2] == "submit"
    chunksize = 1 if submit else int(sys.argv[2])
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200000
    if workload == "tiny":
        tasks, fn, want = list(range(count)), tiny, tiny
    elif workload == "struct":
        tasks, fn, want = [make_record(i) for i in range(count)], process, process
    else:
        raise SystemExit("usage: futures_bench.py tiny|struct CHUNKSIZE|submit [REPS] [TASKS]")
    expected = [want(t) for t in tasks]
    seconds = []
    verified = True
    with MPIPoolExecutor() as pool:
        list(pool.map(fn, tasks[:1000], chunksize=chunksize))  # warm-up: workers started
        for _ in range(reps):
            start = time.perf_counter()
            if submit:
                futures = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
                results = [None] * len(tasks)
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
            else:
                results = list(pool.map(fn, tasks, chunksize=chunksize))
            seconds.append(time.perf_counter() - start)
            verified = verified and results == expected
    impl = "mpi4py_futures_submit" if submit else "mpi4py_futures_%d" % chunksize
    print(json.dumps({"workload": workload, "impl": impl,
                      "ranks": MPI.COMM_WORLD.Get_size(), "tasks": count, "bytes": 0,
                      "verified": verified, "seconds": seconds, "allocs_per_task": -1,
                      "serial_seconds": 0}, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
