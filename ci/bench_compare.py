#!/usr/bin/env python3
"""keel beside Go, Boost.Fiber and the OS floor: the runner behind
ci/bench-compare.sh (docs/PERFORMANCE.md).

Reads the rows from bench/rows.txt, runs every row's benchmark on every
system alternately (round 1: row 1 keel, Go, Fiber, floor; row 2 ...; then
round 2 ...), each run a fresh process, and prints a Markdown table of the
medians and of the per-round ratios (median and min-max), which it also
writes, with every raw value, to OUT/compare.md and OUT/compare.json.

A benchmark that does not exist (yet), a missing Go or Boost.Fiber, or a
failed run leaves its cell "—" with a note under the table; the run goes on.
"""
import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

SYSTEMS = ("keel", "go", "fiber", "floor")
TITLES = {"keel": "keel", "go": "Go", "fiber": "Boost.Fiber", "floor": "floor"}
DASH = "—"
ABSENT = "not written yet"  # the why of a benchmark no binary has


# --------------------------------------------------------------- the table
class Cell:
    """One system's side of a row: what to run and which number to take."""

    def __init__(self, system, text):
        self.system = system
        self.text = text.strip()
        self.skip = None  # why nothing runs ("" for a plain "-")
        self.filter = None
        self.opts = {}
        if self.text in ("", "-", DASH):
            self.skip = ""
            return
        if self.text.startswith("n/a"):
            self.skip = self.text.split(":", 1)[1].strip() if ":" in self.text else "n/a"
            return
        words = self.text.split()
        self.filter = words[0]
        if not self.filter.startswith("^"):
            # A plain name: itself, with Google Benchmark's suffixes
            # (/real_time, /threads:N, /iterations:N ...) or, for Go, the
            # exact (sub-)benchmark.
            if system == "go":
                self.filter = "/".join(f"^{part}$" for part in self.filter.split("/"))
            else:
                self.filter = f"^{self.filter}(/.*)?$"
        for w in words[1:]:
            k, sep, v = w.partition("=")
            if not sep:
                raise ValueError(f"{system} cell {self.text!r}: {w!r} is not key=value")
            self.opts[k] = v

    def key(self):
        """Runs with the same key in one round are one process (one run
        gives several rows, e.g. skynet's time and its memory)."""
        return (self.system, self.filter, tuple(sorted((k, v) for k, v in self.opts.items() if k != "m")))


class Row:
    def __init__(self, fields, lineno):
        if len(fields) < 7:
            raise ValueError(f"bench/rows.txt:{lineno}: {len(fields)} columns, want 7 or 8")
        self.name, self.unit = fields[0].strip(), fields[1].strip()
        self.cells = {s: Cell(s, fields[2 + i]) for i, s in enumerate(SYSTEMS)}
        self.target = fields[6].strip()
        self.heavy = len(fields) > 7 and fields[7].strip() == "heavy"
        self.scale = 1e-6 if self.unit.startswith("ms") else 1.0  # values are ns or plain


def read_rows(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            rows.append(Row(line.rstrip("\n").split("|"), n))
    return rows


# --------------------------------------------------------------- running
class Runner:
    def __init__(self, args):
        self.args = args
        b = args.build
        self.bins = {
            "keel": os.path.join(b, "bench", "keel-bench"),
            "poller": os.path.join(b, "bench", "keel-bench-poller"),
            "floor": os.path.join(b, "bench", "floor", "keel-bench-floor"),
            "fiber": os.path.join(b, "bench", "fiber", "keel-bench-fiber"),
            "go": args.go,
        }
        self.absent = {}  # system -> why its column is empty
        if not args.go or not os.access(args.go, os.X_OK):
            self.absent["go"] = args.go_reason or "no Go benchmark binary"
        if not os.access(self.bins["fiber"], os.X_OK):
            self.absent["fiber"] = args.fiber_reason or "keel-bench-fiber not built (Boost.Fiber missing)"
        for s in ("keel", "floor"):
            if not os.access(self.bins[s], os.X_OK):
                sys.exit(f"bench_compare: {self.bins[s]} is missing: build first (ci/bench-compare.sh)")
        self.listing = {}  # binary -> its benchmark names (to tell "absent" from "failed")

    def names(self, binary):
        if binary not in self.listing:
            if binary == "go":
                cmd = [self.bins["go"], "-test.list", "^Benchmark"]
            else:
                cmd = [self.bins[binary], "--benchmark_list_tests"]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
            self.listing[binary] = out.split()
        return self.listing[binary]

    def exists(self, binary, flt):
        if binary == "go":
            top = flt.split("/")[0]  # sub-benchmarks are not listed; their parent is
            return any(re.search(top, n) for n in self.names("go"))
        return any(re.search(flt, n) for n in self.names(binary))

    def binary_of(self, cell):
        if cell.system == "go":
            return "go"
        if cell.system == "fiber":
            return "fiber"
        return cell.opts.get("bin", "keel" if cell.system == "keel" else "floor")

    def run(self, cell):
        """One fresh process. Returns (raw result, None) or (None, why)."""
        binary = self.binary_of(cell)
        if not os.access(self.bins[binary], os.X_OK):
            return None, f"{os.path.basename(self.bins[binary])} not built"
        if not self.exists(binary, cell.filter):
            return None, ABSENT
        env = dict(os.environ)
        if binary == "go":
            cmd = [self.bins["go"], "-test.run", "^$", "-test.bench", cell.filter,
                   "-test.cpu", cell.opts.get("cpu", "1"),
                   "-test.benchtime", cell.opts.get("bt", self.args.benchtime + "s")]
            env.pop("GOMAXPROCS", None)
        else:
            cmd = [self.bins[binary], "--benchmark_filter=" + cell.filter, "--benchmark_format=json",
                   "--benchmark_min_time=" + self.args.benchtime]
            if "P" in cell.opts:
                env["KEEL_MAXPROCS"] = cell.opts["P"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {self.args.timeout}s"
        if p.returncode != 0:
            tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["?"]
            return None, f"exit {p.returncode}: {tail[0][:120]}"
        if binary == "go":
            lines = [l for l in p.stdout.splitlines() if l.startswith("Benchmark")]
            return (lines, None) if lines else (None, "no benchmark ran")
        try:
            benches = [b for b in json.loads(p.stdout)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
        except (ValueError, KeyError):
            return None, "unreadable benchmark JSON"
        if not benches:
            return None, "no benchmark ran"
        if benches[0].get("error_occurred"):
            return None, benches[0].get("error_message", "error")
        return benches, None


def metric(cell, raw):
    """The row's number from one run's output, or (None, why)."""
    m = cell.opts.get("m")
    if cell.system == "go":
        unit = m or "ns/op"
        for line in raw:
            f = line.split()
            for i in range(1, len(f)):
                if f[i] == unit:
                    return float(f[i - 1]), None
        return None, f"no {unit} in the Go output"
    b = raw[0]
    if m in (None, "real", "cpu"):
        per = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        return b["cpu_time" if m == "cpu" else "real_time"] * per, None
    if m == "items":
        if "items_per_second" not in b:
            return None, "no items_per_second"
        return 1e9 / b["items_per_second"], None
    if m.startswith("counter:"):
        name = m.split(":", 1)[1]
        if name not in b:
            return None, f"no counter {name}"
        return float(b[name]), None
    return None, f"unknown metric {m}"


# --------------------------------------------------------------- reporting
def fmt(v, scale=1.0):
    if v is None:
        return DASH
    v *= scale
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def rfmt(x):
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def ratio_text(r):
    if not r:
        return DASH
    return f"{rfmt(statistics.median(r))} ({rfmt(min(r))}–{rfmt(max(r))})"


def target_text(row, keel_med, go_ratio):
    t = row.target
    if t in ("", "-"):
        return ""
    m = re.fullmatch(r"(go|abs)<=([0-9.]+)", t)
    if not m:
        return t
    bound = float(m.group(2))
    if m.group(1) == "go":
        if not go_ratio:
            return f"≤ {bound:g}×"
        r = statistics.median(go_ratio)
        return f"≤ {bound:g}× ✓" if r <= bound else f"≤ {bound:g}× ✗ {r / bound:.1f}× over"
    if keel_med is None:
        return f"≤ {fmt(bound)}"
    return f"≤ {fmt(bound)} ✓" if keel_med <= bound else f"≤ {fmt(bound)} ✗ {keel_med / bound:.1f}× over"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="the Release build directory")
    ap.add_argument("--go", default="", help="the compiled bench/go test binary")
    ap.add_argument("--go-reason", default="", help="why there is no Go binary")
    ap.add_argument("--fiber-reason", default="", help="why there is no Boost.Fiber binary")
    ap.add_argument("--rows", default=os.path.join(os.path.dirname(__file__), "..", "bench", "rows.txt"))
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--quick", action="store_true", help="3 rounds, 0.1 s per benchmark, heavy rows once")
    ap.add_argument("--rounds", type=int, help="rounds (default 5, --quick 3)")
    ap.add_argument("--only", default="", help="only the rows whose name matches this regex")
    ap.add_argument("--benchtime", help="seconds per Google Benchmark / go test run (default 0.5, --quick 0.1)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per run")
    ap.add_argument("--meta", default="{}", help="JSON object added to the report (build info)")
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    args.benchtime = args.benchtime or ("0.1" if args.quick else "0.5")
    heavy_rounds = min(rounds, 1 if args.quick else 3)

    rows = [r for r in read_rows(args.rows) if re.search(args.only, r.name)]
    runner = Runner(args)
    t_start = time.time()
    vals = {(i, s): [] for i in range(len(rows)) for s in SYSTEMS}  # per round, None when it failed
    notes = {}  # (row, system) -> why the cell is empty
    for rnd in range(rounds):
        cache = {}
        for i, row in enumerate(rows):
            if row.heavy and rnd >= heavy_rounds:
                continue
            for s in SYSTEMS:
                cell = row.cells[s]
                if cell.skip is not None:
                    vals[(i, s)].append(None)
                    continue
                if s in runner.absent:
                    vals[(i, s)].append(None)
                    continue
                k = cell.key()
                if k not in cache:
                    cache[k] = runner.run(cell)
                raw, why = cache[k]
                v = None
                if raw is not None:
                    v, why = metric(cell, raw)
                if why:
                    notes[(i, s)] = why
                vals[(i, s)].append(v)
                print(f"round {rnd + 1}/{rounds}  {row.name:<34} {TITLES[s]:<11} {fmt(v, row.scale):>12} {row.unit}"
                      + (f"   ({why})" if why else ""), file=sys.stderr, flush=True)
    took = time.time() - t_start

    def per_round_ratios(i, other):
        a, b = vals[(i, "keel")], vals[(i, other)]
        return [x / y for x, y in zip(a, b) if x is not None and y is not None and y > 0]

    report_rows = []
    header = ["benchmark", "unit", "keel", "Go", "Boost.Fiber", "floor", "keel/Go (min–max)",
              "keel/floor (min–max)", "target"]
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    footnotes = []
    absent = []  # benchmarks that do not exist (yet): one note for all
    for i, row in enumerate(rows):
        med = {}
        for s in SYSTEMS:
            got = [v for v in vals[(i, s)] if v is not None]
            med[s] = statistics.median(got) if got else None
        rg, rf = per_round_ratios(i, "go"), per_round_ratios(i, "floor")
        cells = []
        for s in SYSTEMS:
            txt = fmt(med[s], row.scale)
            why = notes.get((i, s))
            if row.cells[s].skip:
                txt = f"n/a ({row.cells[s].skip})"
            elif med[s] is None and why == ABSENT:
                txt = f"{DASH} (not yet)"
                name = f"{TITLES[s]} {row.cells[s].text.split()[0]}"
                if name not in absent:
                    absent.append(name)
            elif med[s] is None and why:
                if why not in footnotes:
                    footnotes.append(why)
                txt = f"{DASH} [{footnotes.index(why) + 1}]"
            elif med[s] is None and s in runner.absent and row.cells[s].skip is None:
                txt = f"{DASH} (no {TITLES[s]})"
            cells.append(txt)
        tgt = target_text(row, med["keel"], rg)
        if row.target.startswith("abs"):
            tgt = tgt.replace("≤", "keel ≤", 1)
        md.append("| " + " | ".join([row.name, row.unit] + cells + [ratio_text(rg), ratio_text(rf), tgt]) + " |")
        report_rows.append({
            "row": row.name, "unit": row.unit, "target": row.target,
            "medians": {s: med[s] for s in SYSTEMS},
            "values": {s: vals[(i, s)] for s in SYSTEMS},
            "keel_over_go": {"median": statistics.median(rg) if rg else None, "min": min(rg) if rg else None,
                             "max": max(rg) if rg else None, "per_round": rg},
            "keel_over_floor": {"median": statistics.median(rf) if rf else None, "min": min(rf) if rf else None,
                                "max": max(rf) if rf else None, "per_round": rf},
            "notes": {s: notes[(i, s)] for s in SYSTEMS if (i, s) in notes},
            "commands": {s: row.cells[s].text for s in SYSTEMS},
        })

    mode = "quick" if args.quick else "full"
    lines = [f"Mode {mode}: {rounds} round(s) ({heavy_rounds} for the heavy rows), "
             f"{args.benchtime} s per benchmark, alternating keel, Go, Boost.Fiber, floor; took {took / 60:.1f} min. "
             "Medians over rounds; ratios are per round (keel/other in the same round), median (min–max): "
             "below 1 means keel is faster / smaller.", ""]
    lines += md
    if footnotes or runner.absent or absent:
        lines.append("")
    if absent:
        lines.append("- not yet: no benchmark matches " + ", ".join(f"`{a}`" for a in absent))
    for s, why in runner.absent.items():
        lines.append(f"- {TITLES[s]} column empty: {why}")
    for n, why in enumerate(footnotes, 1):
        lines.append(f"- [{n}] {why}")
    text = "\n".join(lines) + "\n"
    print(text)

    meta = json.loads(args.meta)
    meta.update({
        "mode": mode, "rounds": rounds, "heavy_rounds": heavy_rounds, "benchtime_s": float(args.benchtime),
        "seconds": round(took, 1), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "loadavg": os.getloadavg()},
        "absent": runner.absent,
    })
    try:
        with open("/proc/cpuinfo") as f:
            meta["machine"]["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"meta": meta, "rows": report_rows}, f, indent=1)
    print(f"(written: {os.path.join(args.out, 'compare.md')}, {os.path.join(args.out, 'compare.json')})", file=sys.stderr)


if __name__ == "__main__":
    main()
