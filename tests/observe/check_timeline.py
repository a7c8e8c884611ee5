#!/usr/bin/env python3
"""End-to-end checks of progress, report and timeline, run on the timeline example
(examples/timeline.cpp: 60 tasks, task i fails when i % 13 == 12).

  check_timeline.py run --progress VALUE --expect log|terminal [--pty] --workers W --out PREFIX -- CMD...
      runs CMD with FOREMAN_PROGRESS=VALUE, standard error on a pipe (or a pseudo-terminal with
      --pty); checks that the progress display went to standard error in the expected form and
      that standard output holds only the program's own lines; keeps standard output in
      PREFIX.stdout for the trace check.
  check_timeline.py trace --workers W --out PREFIX
      parses PREFIX.json (Chrome Trace Event format) and checks it against the run: one event
      per task, the failed ones, one track per worker, and the per-worker counts of the report
      the program printed (PREFIX.stdout).
  check_timeline.py browser --workers W --out PREFIX
      renders PREFIX.html in headless Chromium: the DOM must hold one bar per task, and the
      screenshot (kept in PREFIX.png) one chart row per worker with green and red bars in it.
      Exits 77 (CTest: skipped) when Chromium is missing, unless FOREMAN_REQUIRE_BROWSER=1.
"""
import argparse
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

TASKS = 60
FAILED = [i for i in range(TASKS) if i % 13 == 12]
OK_RGB = (0x2E, 0x9D, 0x4A)  # .ok in timeline.hpp
FAILED_RGB = (0xD6, 0x27, 0x28)  # .failed
ROW_RGB = (0xF4, 0xF4, 0xF4)  # .row

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return condition


def finish(context=""):
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        if context:
            print(context)
        sys.exit(1)
    print("ok")


def ranks(workers):
    return list(range(1, workers + 1)) if workers > 0 else [0]


def report_rows(stdout):
    """{rank: (tasks, failed)} from the table of run_report::print()."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+[0-9.]+\s+[0-9.]+%", line)
        if m:
            rows[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return rows


# ---- run ----------------------------------------------------------------------------------------
def run_capturing(command, env, use_pty):
    if not use_pty:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        return done.returncode, done.stdout.decode(), done.stderr.decode()
    master, slave = pty.openpty()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    out = process.stdout.read()
    status = process.wait(timeout=120)
    # A terminal turns "\n" into "\r\n" on output.
    return status, out.decode(), err.decode().replace("\r\n", "\n")


def progress_pattern(total):
    return (r"foreman: (?:\[[#.]{20}\] )?(\d+)/%d tasks \((\d+)%%\), [0-9.]+ tasks/s, (ETA|done in) [0-9.hms]+, "
            r"(\d+) failed, 0 workers lost" % total)


def command_run(args):
    env = dict(os.environ, FOREMAN_PROGRESS=args.progress)
    status, out, err = run_capturing(args.command, env, args.pty)
    context = "--- stdout ---\n%s--- stderr ---\n%s" % (out, err)
    check(status == 0, "exit status %d" % status)
    with open(args.out + ".stdout", "w") as f:
        f.write(out)

    # Standard output: the program's own lines and nothing of the progress display.
    check("\r" not in out, "a carriage return on standard output")
    check(not re.search(r"tasks \(\d+%\)", out), "progress text on standard output")
    lines = out.splitlines()
    check(len(lines) >= 3 and lines[0] == "%d of %d tasks succeeded" % (TASKS - len(FAILED), TASKS) and
          lines[1] == "" and lines[2].startswith("foreman run: %d tasks in " % TASKS),
          "standard output does not begin with the summary and the report")
    rows = report_rows(out)
    check(sorted(rows) == ranks(args.workers), "report rows %s, expected ranks %s" % (sorted(rows), ranks(args.workers)))
    check(sum(t for t, _ in rows.values()) == TASKS, "report rows do not add up to %d tasks" % TASKS)
    check(sum(f for _, f in rows.values()) == len(FAILED), "report rows do not add up to %d failures" % len(FAILED))

    pattern = re.compile(progress_pattern(TASKS))
    if args.expect == "log":
        check("\r" not in err, "a carriage return in log mode")
        shown = [l for l in err.splitlines() if l.startswith("foreman: ")]
        check(len(shown) == 10, "%d progress lines, expected 10 (one per tenth)" % len(shown))
        for k, line in enumerate(shown):
            m = pattern.fullmatch(line)
            if not check(m is not None, "not a progress line: %r" % line):
                continue
            check(int(m.group(1)) == 6 * (k + 1) and int(m.group(2)) == 10 * (k + 1),
                  "line %d reports %s/%d tasks (%s%%)" % (k + 1, m.group(1), TASKS, m.group(2)))
            check(m.group(3) == ("done in" if k == 9 else "ETA"), "line %d: %s" % (k + 1, m.group(3)))
        if shown and pattern.fullmatch(shown[-1]):
            check(pattern.fullmatch(shown[-1]).group(4) == str(len(FAILED)), "last line: wrong failure count")
    else:
        at = err.find("\rforeman: [")
        check(at >= 0, "no progress line redrawn in place on standard error")
        display = err[at:]
        end = display.find("\n")
        check(end == len(display) - 1 or display[end + 1:].strip() == "",
              "the progress display does not end with its only newline")
        draws = [d.rstrip(" ") for d in display[:end].split("\r") if d]
        check(2 <= len(draws) <= TASKS, "%d draws of the progress line" % len(draws))
        for d in draws:
            check(pattern.fullmatch(d) is not None, "not a progress line: %r" % d)
        last = pattern.fullmatch(draws[-1]) if draws else None
        check(last is not None and last.group(1) == str(TASKS) and last.group(3) == "done in" and
              draws[-1].startswith("foreman: [" + "#" * 20 + "]"), "the last draw is not the final line")
    finish(context)


# ---- trace --------------------------------------------------------------------------------------
def command_trace(args):
    with open(args.out + ".json") as f:
        trace = json.load(f)
    with open(args.out + ".stdout") as f:
        rows = report_rows(f.read())
    events = trace["traceEvents"]
    tasks = [e for e in events if e.get("ph") == "X"]
    check(len(tasks) == TASKS, "%d task events, expected %d" % (len(tasks), TASKS))
    check(sorted(e["args"]["index"] for e in tasks) == list(range(TASKS)), "task indices are not 0..%d" % (TASKS - 1))
    failed = sorted(e["args"]["index"] for e in tasks if e["cat"] == "failed")
    check(failed == FAILED, "failed tasks %s, expected %s" % (failed, FAILED))
    check(all("hit a bad input" in e["args"].get("error", "") for e in tasks if e["cat"] == "failed"),
          "a failed task's event does not carry its exception")
    check(all(e["cat"] == "ok" for e in tasks if e["cat"] != "failed"), "a task neither ok nor failed")
    check(trace["otherData"]["workers"] == args.workers and trace["otherData"]["tasks"] == TASKS, "otherData")
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "thread_name"}
    expected = {r: ("worker %d" % r if r else "master") for r in ranks(args.workers)}
    check(names == expected, "tracks %s, expected %s" % (names, expected))
    wall_us = trace["otherData"]["wall_seconds"] * 1e6
    for rank in ranks(args.workers):
        mine = sorted((e for e in tasks if e["tid"] == rank), key=lambda e: e["ts"])
        check((len(mine), sum(e["cat"] == "failed" for e in mine)) == rows.get(rank),
              "worker %d: %d events (%d failed), the report says %s" %
              (rank, len(mine), sum(e["cat"] == "failed" for e in mine), rows.get(rank)))
        for a, b in zip(mine, mine[1:]):
            check(b["ts"] >= a["ts"] + a["dur"] - 0.002, "worker %d: tasks %d and %d overlap" %
                  (rank, a["args"]["index"], b["args"]["index"]))
        check(all(e["ts"] >= 0 and e["ts"] + e["dur"] <= wall_us + 0.002 for e in mine),
              "worker %d: an event outside the run" % rank)
    check({e["tid"] for e in tasks} <= set(ranks(args.workers)), "an event on a rank that is not a worker")
    finish()


# ---- browser ------------------------------------------------------------------------------------
def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    at, idat = 8, b""
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in (2, 6) or interlace:
                raise ValueError("PNG layout not handled: depth %d, colour type %d" % (depth, color))
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = previous[x]
            c = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def command_browser(args):
    browser = find_chromium()
    if browser is None:
        if os.environ.get("FOREMAN_REQUIRE_BROWSER") == "1":
            print("FAILED: chromium is not installed (scripts/install-deps.sh installs it) and "
                  "FOREMAN_REQUIRE_BROWSER=1")
            sys.exit(1)
        print("SKIPPED: chromium is not installed (Debian: apt-get install chromium)")
        sys.exit(77)
    page = "file://" + os.path.abspath(args.out + ".html")
    png = args.out + ".png"
    profile = tempfile.mkdtemp(prefix="foreman-chromium-")
    # Headless, no sandbox (root in a container), and none of the background traffic a browser
    # starts on its own: the page must render from the file alone.
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
             "--disable-client-side-phishing-detection", "--disable-breakpad", "--metrics-recording-only",
             "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
             "--no-pings", "--hide-scrollbars", "--force-device-scale-factor=1"]
    try:
        dom = subprocess.run(flags + ["--dump-dom", page], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=90)
        shot = subprocess.run(flags + ["--window-size=1100,420", "--screenshot=" + png, page],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    check(dom.returncode == 0, "chromium --dump-dom: exit status %d\n%s" % (dom.returncode, dom.stderr.decode()[-2000:]))
    check(shot.returncode == 0, "chromium --screenshot: exit status %d\n%s" %
          (shot.returncode, shot.stderr.decode()[-2000:]))
    html = dom.stdout.decode()

    # The DOM the browser built: one bar per task, the failed ones marked, each with its title.
    bars = re.findall(r'<rect class="bar (ok|failed|retried)" data-task="(\d+)"[^>]*><title>task (\d+) ', html)
    check(len(bars) == TASKS, "%d bars in the DOM, expected %d" % (len(bars), TASKS))
    check(sorted(int(t) for _, t, _ in bars) == list(range(TASKS)), "bars are not tasks 0..%d" % (TASKS - 1))
    check(all(t == u for _, t, u in bars), "a bar's title names another task")
    check(sorted(int(t) for s, t, _ in bars if s == "failed") == FAILED, "the failed bars are not tasks %s" % FAILED)
    check(len(re.findall(r'<rect class="row', html)) == len(ranks(args.workers)), "not one row per worker")

    # The picture: the chart's rows (their grey background) hold green and red bars.
    if os.path.exists(png):
        width, height, pixels = read_png(png)
        check((width, height) == (1100, 420), "screenshot is %dx%d" % (width, height))
        white = sum(p == (255, 255, 255) for row in pixels for p in row)
        check(white < 0.98 * width * height, "the screenshot is blank")
        band_rows = [y for y in range(height) if sum(p == ROW_RGB for p in pixels[y]) >= 50]
        bands = sum(1 for i, y in enumerate(band_rows) if i == 0 or band_rows[i - 1] != y - 1)
        check(bands == len(ranks(args.workers)), "%d chart rows in the screenshot, expected %d" %
              (bands, len(ranks(args.workers))))
        chart = [pixels[y] for y in range(band_rows[0], band_rows[-1] + 1)] if band_rows else []
        ok = sum(p == OK_RGB for row in chart for p in row)
        failed = sum(p == FAILED_RGB for row in chart for p in row)
        check(ok >= 2000, "%d green pixels in the chart" % ok)
        check(failed >= 20, "%d red pixels in the chart" % failed)
        print("screenshot %s: %d chart rows, %d green and %d red pixels" % (png, bands, ok, failed))
    else:
        check(False, "chromium wrote no screenshot")
    finish()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["run", "trace", "browser"])
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--out", required=True, help="prefix of the timeline files")
    parser.add_argument("--progress", default="1")
    parser.add_argument("--expect", choices=["log", "terminal"], default="log")
    parser.add_argument("--pty", action="store_true")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1:]
    {"run": command_run, "trace": command_trace, "browser": command_browser}[args.mode](args)


if __name__ == "__main__":
    main()
