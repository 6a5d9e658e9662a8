#!/usr/bin/env python3
"""keel conformance report.

  matrix.py collect --leg LEG --results DIR --out build/conformance/LEG.json
      Turn one leg's per-test records (written by the harness, one file per
      test) into that leg's JSON. A test in the binary's list with no record,
      or whose record is still the "crashed" placeholder, is a failure.

  matrix.py merge [--out build/conformance/matrix.md] LEG.json...
      Print the Markdown matrix (rows: test IDs grouped by area; columns:
      legs) and write it to --out. Exit 1 if any cell is unexpected or any ID
      is missing from a column.

Only the standard library: it runs on every CI runner as is.
"""
import argparse
import json
import os
import sys

LEG_ORDER = ["host", "asan", "tsan", "windows-wine", "linux-arm64-qemu",
             "linux-arm64", "macos", "windows-msvc", "windows-mingw"]


def collect(args):
    results = args.results
    records = {}
    ids = []
    if os.path.isdir(results):
        ids_file = os.path.join(results, "_ids.txt")
        if os.path.exists(ids_file):
            with open(ids_file, encoding="utf-8") as f:
                ids = [line.strip() for line in f if line.strip()]
        for name in sorted(os.listdir(results)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(results, name), encoding="utf-8") as f:
                try:
                    rec = json.load(f)
                except json.JSONDecodeError as e:
                    print(f"matrix.py: unreadable record {name}: {e}", file=sys.stderr)
                    continue
            records[rec["id"]] = rec
    if not ids and not records:
        print(f"matrix.py: no results in {results}: did the test binary start at all?", file=sys.stderr)
    for tid in ids:
        if tid not in records:
            records[tid] = {"id": tid, "status": "missing", "expected": "?", "verdict": "unexpected",
                            "message": "no result: the test never ran or its process could not start",
                            "metrics": {}}
    for rec in records.values():
        if rec.get("status") == "crashed":
            rec["verdict"] = "unexpected"
    platform = {}
    desc = records.get("platform.description.print")
    if desc:
        platform = {k[len("info."):]: v for k, v in desc.get("metrics", {}).items() if k.startswith("info.")}
    leg = {"leg": args.leg, "platform": platform, "tests": dict(sorted(records.items()))}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(leg, f, indent=1)
    bad = [r["id"] for r in records.values() if r.get("verdict") != "ok"]
    print(f"{args.leg}: {len(records)} tests, {len(bad)} unexpected -> {args.out}")
    for b in bad:
        print(f"  unexpected: {b}: {records[b].get('status')}")
    return 0


def cell_text(rec):
    if rec is None:
        return "**MISSING**", False
    status = rec.get("status")
    ok = rec.get("verdict") == "ok"
    # GoogleTest messages span lines ("Expected equality...", values, then the
    # test's own explanation): keep them all, on one line, bounded.
    msg = " / ".join(l.strip() for l in (rec.get("message") or "").strip().splitlines() if l.strip())
    if len(msg) > 240:
        msg = msg[:237] + "..."
    metrics = {k[len("metric."):]: v for k, v in rec.get("metrics", {}).items() if k.startswith("metric.")}
    mtext = ", ".join(f"{k} {v}" for k, v in metrics.items())
    if ok:
        if status == "pass":
            text = "pass" + (f" ({mtext})" if mtext else "")
        elif status == "skip":
            text = f"skip: {msg}"
        else:
            text = f"xfail: {rec.get('expect_reason', '')}"
    else:
        if status == "pass":
            text = f"**FAIL**: unexpected pass (expected {rec.get('expected')}: {rec.get('expect_reason', '')})"
        elif status == "skip":
            text = f"**FAIL**: unexpected skip: {msg}"
        elif status in ("crashed", "missing"):
            text = f"**FAIL**: {status}: {msg}"
        else:
            text = f"**FAIL**: {msg}"
    return text.replace("|", "\\|"), ok


def merge(args):
    legs = []
    for path in args.legs:
        with open(path, encoding="utf-8") as f:
            legs.append(json.load(f))
    legs.sort(key=lambda l: (LEG_ORDER.index(l["leg"]) if l["leg"] in LEG_ORDER else 99, l["leg"]))
    names = [l["leg"] for l in legs]
    all_ids = sorted({tid for l in legs for tid in l["tests"]})
    out = []
    out.append("# keel conformance matrix\n")
    out.append("## Platforms\n")
    keys = []
    for l in legs:
        for k in l.get("platform", {}):
            if k not in keys:
                keys.append(k)
    out.append("| | " + " | ".join(names) + " |")
    out.append("|---|" + "---|" * len(names))
    for k in keys:
        out.append(f"| {k} | " + " | ".join(str(l.get("platform", {}).get(k, "")).replace("|", "\\|") for l in legs) + " |")
    out.append("")
    out.append("## Results\n")
    passed = failed = skipped = xfailed = 0
    area = None
    for tid in all_ids:
        a = tid.split(".", 1)[0]
        if a != area:
            area = a
            out.append(f"\n### {area}\n")
            out.append("| test | " + " | ".join(names) + " |")
            out.append("|---|" + "---|" * len(names))
        cells = []
        for l in legs:
            rec = l["tests"].get(tid)
            text, ok = cell_text(rec)
            cells.append(text)
            if not ok:
                failed += 1
            elif rec["status"] == "pass":
                passed += 1
            elif rec["status"] == "skip":
                skipped += 1
            else:
                xfailed += 1
        out.append(f"| `{tid}` | " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"{len(all_ids)} test IDs x {len(names)} legs; {xfailed} expected failures (xfail) are counted as skipped below.")
    text = "\n".join(out)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(f"\nconformance: {passed} passed, {failed} failed, {skipped + xfailed} skipped")
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--leg", required=True)
    c.add_argument("--results", required=True)
    c.add_argument("--out", required=True)
    m = sub.add_parser("merge")
    m.add_argument("--out")
    m.add_argument("legs", nargs="+")
    args = p.parse_args()
    return collect(args) if args.cmd == "collect" else merge(args)


if __name__ == "__main__":
    sys.exit(main())
