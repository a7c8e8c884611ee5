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
  check_timeline.py large --program PATH --tasks N --workers W --out PREFIX [--seconds S] [--max-bytes B]
      runs PATH (tests/observe/large_timeline.cpp) to write the timeline of a made-up run of N
      tasks on W workers, PREFIX.html, and what it must show, PREFIX.expect.json; checks that the
      page is at most B bytes, that headless Chromium loads it and dumps its DOM, and loads it and
      takes a screenshot (PREFIX.png), each within S seconds (killed at S); that the DOM is the
      aggregated chart, its bars adding up to the run's tasks and failures per worker, every failed
      task in a red bar; and that the screenshot has W chart rows, the lost workers' marked, and
      red where those bars are. Exits 77 as `browser` does.
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
import time
import zlib

TASKS = 60
FAILED = [i for i in range(TASKS) if i % 13 == 12]
OK_RGB = (0x2E, 0x9D, 0x4A)  # .ok in timeline.hpp
FAILED_RGB = (0xD6, 0x27, 0x28)  # .failed
ROW_RGB = (0xF4, 0xF4, 0xF4)  # .row
LOST_RGB = (0xFD, 0xE7, 0xE7)  # .row.lost
BAR_LIMIT = 20000  # timeline_bar_limit in timeline.hpp
# The chart's geometry (chart_style in timeline.hpp) and the page's margin, in CSS pixels.
MARGIN, LABEL_WIDTH, AXIS_HEIGHT, ROW_HEIGHT = 16, 120, 28, 24

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
_NONZERO = re.compile(rb"[^\x00]")


def _unfilter(kind, raw, prev, channels):
    """One PNG row with its filter undone (RFC 2083, 6.2-6.6), `prev` the row above, decoded.
    Screenshots are mostly flat colour, so a filtered row is mostly runs of zeros: over such a run
    a Sub row repeats the pixel before it, and a Paeth row the row above once the pixel before it
    does, or the pixel before it where the row above is flat; only the other bytes are decoded one at
    a time."""
    n = len(raw)
    if kind == 0:
        return bytearray(raw)
    if kind == 2:  # Up: bytewise addition of two big integers, no carry from byte to byte
        a, b = int.from_bytes(raw, "big"), int.from_bytes(prev, "big")
        low = int.from_bytes(b"\x7f" * n, "big")
        return bytearray((((a & low) + (b & low)) ^ ((a ^ b) & ~low)).to_bytes(n + 1, "big")[1:])
    line = bytearray(n)
    x, end = 0, 0  # raw[x:end] are zeros
    while x < n:
        if raw[x] == 0 and x >= channels and kind != 3:
            if end <= x:
                zeros = _NONZERO.search(raw, x)
                end = zeros.start() if zeros else n
            if kind == 4 and line[x - channels:x] == prev[x - channels:x]:
                line[x:end] = prev[x:end]
                x = end
                continue
            # Sub, or Paeth where the row above is flat: as far as it stays flat (a binary search).
            flat = end
            if kind == 4:
                lo, flat = x, end
                while lo < flat:
                    mid = (lo + flat + 1) // 2
                    if prev[x:mid] == prev[x - channels:mid - channels]:
                        lo = mid
                    else:
                        flat = mid - 1
            if flat > x:
                line[x:flat] = (line[x - channels:x] * ((flat - x) // channels + 1))[:flat - x]
                x = flat
                continue
        a = line[x - channels] if x >= channels else 0
        b = prev[x]
        if kind == 1:
            line[x] = (raw[x] + a) & 255
        elif kind == 3:
            line[x] = (raw[x] + (a + b) // 2) & 255
        else:
            c = prev[x - channels] if x >= channels else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (raw[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        x += 1
    return line


def decode_png(path):
    """(width, height, rows) of an 8-bit RGB or RGBA PNG, each row a bytearray of r, g, b bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    at, idat = 8, []
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in (2, 6) or interlace:
                raise ValueError("PNG layout not handled: depth %d, colour type %d" % (depth, color))
        elif kind == b"IDAT":
            idat.append(body)
        at += 12 + length
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        at = y * (stride + 1)
        line = _unfilter(raw[at], raw[at + 1:at + 1 + stride], previous, channels)
        previous = line
        if channels == 4:
            line = bytearray(line)
            del line[3::4]
        rows.append(line)
    return width, height, rows


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG."""
    width, height, rows = decode_png(path)
    return width, height, [[tuple(row[x:x + 3]) for x in range(0, 3 * width, 3)] for row in rows]


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def require_chromium():
    """The Chromium to run; exits 77 (CTest: skipped) without one, 1 if FOREMAN_REQUIRE_BROWSER=1."""
    browser = find_chromium()
    if browser is None:
        if os.environ.get("FOREMAN_REQUIRE_BROWSER") == "1":
            print("FAILED: chromium is not installed (scripts/install-deps.sh installs it) and "
                  "FOREMAN_REQUIRE_BROWSER=1")
            sys.exit(1)
        print("SKIPPED: chromium is not installed (Debian: apt-get install chromium)")
        sys.exit(77)
    return browser


def run_chromium(browser, arguments, limit):
    """Runs headless Chromium on a page; (exit status, None if killed at `limit` seconds; standard
    output; standard error; seconds it took)."""
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
    start = time.monotonic()
    # A session of its own, so that a browser killed at the limit takes its helper processes along
    # (they hold its output pipes open).
    process = subprocess.Popen(flags + arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = process.communicate(timeout=limit)
        status = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        status = None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return status, out, err, time.monotonic() - start


def command_browser(args):
    browser = require_chromium()
    page = "file://" + os.path.abspath(args.out + ".html")
    png = args.out + ".png"
    dom_status, dom_out, dom_err, _ = run_chromium(browser, ["--dump-dom", page], 90)
    shot_status, _, shot_err, _ = run_chromium(browser, ["--window-size=1100,420", "--screenshot=" + png, page], 90)
    check(dom_status == 0, "chromium --dump-dom: exit status %s\n%s" % (dom_status, dom_err.decode()[-2000:]))
    check(shot_status == 0, "chromium --screenshot: exit status %s\n%s" % (shot_status, shot_err.decode()[-2000:]))
    html = dom_out.decode()

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


# ---- large --------------------------------------------------------------------------------------
BIN_BAR = re.compile(r'<rect class="bin (ok|failed|retried)" data-worker="(\d+)" data-bins="(\d+)-(\d+)" '
                     r'data-tasks="(\d+)" data-failed="(\d+)" data-retried="(\d+)" x="([0-9.]+)" y="([0-9.]+)" '
                     r'width="([0-9.]+)" height="([0-9.]+)"><title>([^<]*)</title></rect>')


def bands_at(rows, x):
    """The chart rows crossed by pixel column x, top to bottom: (first y, last y, colour)."""
    bands = []
    for y, row in enumerate(rows):
        pixel = tuple(row[3 * x:3 * x + 3])
        if pixel not in (ROW_RGB, LOST_RGB):
            continue
        if bands and bands[-1][1] == y - 1 and bands[-1][2] == pixel:
            bands[-1] = (bands[-1][0], y, pixel)
        else:
            bands.append((y, y, pixel))
    return bands


def command_large(args):
    browser = require_chromium()
    page, png = args.out + ".html", args.out + ".png"
    start = time.monotonic()
    made = subprocess.run([args.program, args.out, str(args.tasks), str(args.workers)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300)
    written = time.monotonic() - start
    if not check(made.returncode == 0, "%s: exit status %d\n%s" % (args.program, made.returncode, made.stdout.decode())):
        finish()
    with open(args.out + ".expect.json") as f:
        expect = json.load(f)
    size = os.path.getsize(page)
    check(size <= args.max_bytes, "the page is %d bytes, more than %d" % (size, args.max_bytes))
    with open(page, "rb") as f:
        svg = re.search(rb'<svg id="timeline" width="[0-9.]+" height="([0-9.]+)"[^>]*>', f.read(1 << 20))
    if not check(svg is not None, "no <svg id=\"timeline\"> in the page's first MiB"):
        finish()
    svg_height = float(svg.group(1))

    # Rendered in bounded time: loaded and its DOM dumped, loaded and drawn, each within the limit.
    url = "file://" + os.path.abspath(page)
    dom_status, dom_out, dom_err, dom_seconds = run_chromium(browser, ["--dump-dom", url], args.seconds)
    shot_status, _, shot_err, shot_seconds = run_chromium(
        browser, ["--window-size=1100,%d" % (svg_height + 400), "--screenshot=" + png, url], args.seconds)
    print("%d tasks on %d workers: page written in %.1f s, %d bytes; chromium --dump-dom %.1f s, --screenshot %.1f s "
          "(limit %g s each)" % (args.tasks, args.workers, written, size, dom_seconds, shot_seconds, args.seconds))
    check(dom_status is not None, "chromium --dump-dom did not finish in %g s" % args.seconds)
    check(shot_status is not None, "chromium --screenshot did not finish in %g s" % args.seconds)
    check(dom_status in (0, None), "chromium --dump-dom: exit status %s\n%s" % (dom_status, dom_err.decode()[-2000:]))
    check(shot_status in (0, None), "chromium --screenshot: exit status %s\n%s" % (shot_status, shot_err.decode()[-2000:]))
    html = dom_out.decode()

    # The DOM: a row per worker, the lost ones marked, and the aggregated chart.
    workers = ranks(args.workers)
    check(len(re.findall(r'<rect class="row', html)) == len(workers), "not one row per worker")
    lost = sorted(int(r) for r in re.findall(r'>worker (\d+) \(lost\)</text>', html))
    check(lost == sorted(expect["lost"]) and html.count('<rect class="row lost"') == len(lost),
          "workers marked lost: %s, expected %s" % (lost, sorted(expect["lost"])))
    check(html.count('<rect class="bar ') == 0, "bars of single tasks in an aggregated chart")
    check('<p class="aggregated">Aggregated view: ' in html, "no line saying that the view is aggregated")
    cut = re.search(r'data-bin-count="(\d+)" data-bin-seconds="([0-9.e+-]+)"', html)
    if not check(cut is not None, "no bins on the chart (data-bin-count, data-bin-seconds)"):
        finish()
    bins, bin_seconds = int(cut.group(1)), float(cut.group(2))
    bars = [(state, int(w), int(b0), int(b1), int(n), int(nf), int(nr), float(x), float(y), float(width),
             float(height), title) for state, w, b0, b1, n, nf, nr, x, y, width, height, title in BIN_BAR.findall(html)]
    check(html.count('<rect class="bin ') == len(bars), "a bin bar not in the expected form")
    check(0 < len(bars) <= min(BAR_LIMIT, len(workers) * bins),
          "%d bars, expected at most %d" % (len(bars), min(BAR_LIMIT, len(workers) * bins)))
    check(sum(b[4] for b in bars) == expect["tasks"], "the bars hold %d tasks, expected %d" %
          (sum(b[4] for b in bars), expect["tasks"]))
    check(sum(b[5] for b in bars) == expect["failures"] == len(expect["failed"]), "the bars hold %d failures, "
          "expected %d" % (sum(b[5] for b in bars), expect["failures"]))
    check(sum(b[6] for b in bars) == expect["retried"], "the bars hold %d retried tasks, expected %d" %
          (sum(b[6] for b in bars), expect["retried"]))
    per_worker = {}
    for state, w, b0, b1, n, nf, nr, x, y, width, height, title in sorted(bars, key=lambda b: b[1:3]):  # red last
        tasks, failed, last = per_worker.get(w, (0, 0, -1))
        check(last < b0 <= b1 < bins, "worker %d: bar of bins %d-%d after bin %d, of %d" % (w, b0, b1, last, bins))
        check(state == ("failed" if nf else "retried" if nr else "ok"), "worker %d, bins %d-%d: a bar of %d failed "
              "and %d retried tasks is %s" % (w, b0, b1, nf, nr, state))
        named = len(re.findall(r"; task \d+ failed: std::runtime_error: task \d+ hit a bad input", title))
        more = re.search(r"; (\d+) more failed$", title)
        check(named + (int(more.group(1)) if more else 0) == nf and named == min(nf, 3),
              "worker %d, bins %d-%d: the title does not name its failures: %s" % (w, b0, b1, title))
        per_worker[w] = (tasks + n, failed + nf, b1)
    expected_rows = {int(w): tuple(v) for w, v in expect["per_worker"].items()}
    check({w: v[:2] for w, v in per_worker.items() if v[0]} == {w: v for w, v in expected_rows.items() if v[0]},
          "the bars' tasks and failures per worker differ from the run's")
    red = [b for b in bars if b[0] == "failed"]
    for index, worker, started in expect["failed"]:
        at = min(bins - 1, max(0, int(started // bin_seconds)))
        check(any(b[1] == worker and b[2] <= at <= b[3] for b in red),
              "failed task %d (worker %d, bin %d) is in no red bar" % (index, worker, at))

    # The picture: a band per worker (the lost ones in their colour), and red where the red bars are.
    if not check(shot_status == 0 and os.path.exists(png), "chromium wrote no screenshot"):
        finish()
    start = time.monotonic()
    width, height, rows = decode_png(png)
    bands = bands_at(rows, MARGIN + 4)  # left of the workers' names
    print("screenshot %s: %dx%d, decoded in %.1f s, %d chart rows" % (png, width, height, time.monotonic() - start,
                                                                        len(bands)))
    if not check(len(bands) == len(workers), "%d chart rows in the screenshot, expected %d" % (len(bands), len(workers))):
        finish()
    check([workers[k] for k, band in enumerate(bands) if band[2] == LOST_RGB] == sorted(expect["lost"]),
          "the rows drawn as lost are not workers %s" % sorted(expect["lost"]))
    top = bands[0][0] - (AXIS_HEIGHT + 1)  # the chart's top edge on the screenshot
    check(all(band[0] - top == AXIS_HEIGHT + 1 + ROW_HEIGHT * k for k, band in enumerate(bands)),
          "the chart rows are not %d px apart" % ROW_HEIGHT)
    green = bytes(OK_RGB)
    check(all(rows[band[0] + ROW_HEIGHT // 2][3 * (MARGIN + LABEL_WIDTH):].count(green) >= 100 for band in bands),
          "a chart row without green across it")
    not_red = []
    for state, w, b0, b1, n, nf, nr, x, y, bar_width, bar_height, title in red:
        px, py = int(MARGIN + x + 1), int(top + y + bar_height / 2)
        if tuple(rows[py][3 * px:3 * px + 3]) != FAILED_RGB:
            not_red.append("worker %d, bins %d-%d at (%d, %d): %s" % (w, b0, b1, px, py, rows[py][3 * px:3 * px + 3].hex()))
    check(not not_red, "red bars not red in the screenshot: %s" % "; ".join(not_red[:5]))
    print("%d bars in %d bins of %.4f s per row, %d of them red" %
          (len(bars), bins, bin_seconds, len(red)))
    finish()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["run", "trace", "browser", "large"])
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--out", required=True, help="prefix of the timeline files")
    parser.add_argument("--progress", default="1")
    parser.add_argument("--expect", choices=["log", "terminal"], default="log")
    parser.add_argument("--pty", action="store_true")
    parser.add_argument("--program", help="large: the program that writes the page")
    parser.add_argument("--tasks", type=int, default=1000000)
    parser.add_argument("--seconds", type=float, default=20.0, help="large: time limit of each Chromium run")
    parser.add_argument("--max-bytes", type=int, default=4000000, help="large: the largest page accepted")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1:]
    {"run": command_run, "trace": command_trace, "browser": command_browser, "large": command_large}[args.mode](args)


if __name__ == "__main__":
    main()
