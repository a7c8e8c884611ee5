#!/usr/bin/env python3
"""The table of scripts/ceiling.sh from its JSON lines (bench ceiling's, plus "load").

    python3 benchmarks/ceiling_report.py <ceiling.jsonl> [--markdown]

One row per rank count, sleep and implementation; a column with a figure per timed run lists them
in run order, the others give the median over the runs.
  tasks/s      tasks / wall seconds of each timed run
  ideal        workers / sleep: every worker always sleeping in a task ("-" for sleep 0)
  task us      mean time inside the task function, measured on the workers (busy share x
               workers x wall / tasks): a sleep of 1000 us lasts longer when the worker waits for a
               core to wake up on
  per busy     tasks/s over workers / task us: the share of the rate the workers' own task time allows
  master us/task, us/msg   the master's CPU (getrusage, user+sys) per task and per message of tasks
  tasks/msg    tasks per message the master sent (automatic chunks pack several)
  master cpu   the master's CPU over wall time: 1.00 is one core, saturated
  workers cpu  all workers' CPU over wall time, in cores (2 here: the machine)
  busy         the workers' time inside the function over workers x wall (run_report::utilization)
  load         1-minute load average just before the launch (the previous launch's ranks weigh in it)
  run          processes runnable just before the launch (procs_running: the others' load, the script's own included)
"""
import json
import statistics
import sys


def rows(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                yield json.loads(line)


def fmt_rate(x):
    return f"{x:,.0f}"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    header = ["ranks", "sleep us", "impl", "tasks", "tasks/s", "ideal", "task us", "per busy",
              "master us/task", "us/msg", "tasks/msg", "master cpu", "workers cpu", "busy", "load", "run"]
    table = []
    for r in rows(args[0]):
        workers, sleep = r["workers"], r["sleep_us"]
        runs = range(len(r["seconds"]))
        rate = [r["tasks"] / r["seconds"][i] for i in runs]
        task_s = [r["busy_share"][i] * workers * r["seconds"][i] / r["tasks"] for i in runs]
        med = lambda xs: statistics.median(xs)
        per_task = [1e6 * r["master_cpu_seconds"][i] / r["tasks"] for i in runs]
        per_msg = [1e6 * r["master_cpu_seconds"][i] / max(1, r["messages"][i]) for i in runs]
        table.append([
            str(r["ranks"]), str(sleep), r["impl"], f"{r['tasks']:,}",
            " / ".join(fmt_rate(x) for x in rate),
            fmt_rate(workers / (sleep * 1e-6)) if sleep else "-",
            f"{1e6 * med(task_s):.0f}",
            f"{med([rate[i] * task_s[i] / workers for i in runs]):.2f}",
            " / ".join(f"{x:.1f}" for x in per_task),
            f"{med(per_msg):.1f}",
            f"{med([r['tasks'] / max(1, m) for m in r['messages']]):.1f}",
            f"{med([r['master_cpu_seconds'][i] / r['seconds'][i] for i in runs]):.2f}",
            f"{med([r['workers_cpu_seconds'][i] / r['seconds'][i] for i in runs]):.2f}",
            f"{med(r['busy_share']):.2f}" + ("" if r["verified"] else " WRONG"),
            f"{r['load'][0]:.1f}" if "load" in r else "?",
            str(r.get("runnable", "?")),
        ])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(row[c]) for row in table + [header]) for c in range(len(header))]
        for row in [header] + table:
            print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    return 0 if all(r["verified"] for r in rows(args[0])) else 1


if __name__ == "__main__":
    sys.exit(main())
