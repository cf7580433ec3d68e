#!/usr/bin/env python3
"""Per-round ratios of a peers.sh run: dae-rN.json against pytorch-rN.json.

  benches/cpu/rounds.py OUT_DIR
  benches/cpu/rounds.py --self-test     (CI: the arithmetic on made-up rounds)

Each round's ratio compares passes run back to back, so the machine's drift
over the run cancels; the median over rounds is the number to quote, with the
rounds' range beside it. Standard library only (any python3).
"""
import glob
import json
import os
import re
import statistics
import sys


def load(path):
    with open(path) as f:
        doc = json.load(f)
    return doc if isinstance(doc, list) else [doc]


def fp32_results(docs):
    """{(tool, batch): result} of one bench file's fp32 results."""
    out = {}
    for doc in docs:
        for r in doc["results"]:
            if r["precision"] == "fp32":
                out[(doc["tool"], r["batch"])] = r
    return out


def spread(values, fmt):
    """median [min-max] of values."""
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"


def summary(out_dir):
    """The report's lines; SystemExit naming the file when one is missing."""
    rounds = []
    for path in sorted(glob.glob(os.path.join(out_dir, "dae-r*.json"))):
        n = re.search(r"dae-r(\d+)\.json$", path).group(1)
        peer = os.path.join(out_dir, f"pytorch-r{n}.json")
        if not os.path.exists(peer):
            sys.exit(f"{peer}: missing (round {n} has no peer run)")
        results = fp32_results(load(path))
        results.update(fp32_results(load(peer)))
        rounds.append(results)
    if not rounds:
        sys.exit(f"{out_dir}: no dae-rN.json round files")
    batches = sorted({b for r in rounds for (t, b) in r if t == "dae"})
    peers = sorted({t for r in rounds for (t, b) in r if t != "dae"})
    lines = [f"{len(rounds)} rounds; ratio = dae / peer within a round (> 1: dae faster);"
             " median [range] over the rounds"]
    for b in batches:
        sps = lambda tool: [r[(tool, b)]["samples_per_second"] for r in rounds]
        ms = [r[("dae", b)]["ms_per_epoch"] for r in rounds]
        lines.append(f"batch {b}: dae {spread(sps('dae'), '{:,.0f}'.format)} samples/s,"
                     f" {spread(ms, '{:.0f}'.format)} ms/epoch")
        for p in peers:
            ratios = [d / t for d, t in zip(sps("dae"), sps(p))]
            lines.append(f"  {p:<16} {spread(sps(p), '{:,.0f}'.format)} samples/s;"
                         f" ratio {spread(ratios, '{:.2f}x'.format)}")
    return lines


def self_test():
    import tempfile

    def bench(tool, sps):
        return {"tool": tool, "results": [{"batch": 256, "precision": "fp32",
                "samples_per_second": sps, "ms_per_epoch": 60000 / sps * 1e3}]}

    with tempfile.TemporaryDirectory() as d:
        # dae drifts 100k -> 50k -> 80k and the peer with it: ratios 2, 2.5, 1.6.
        for n, (ours, theirs) in enumerate([(100e3, 50e3), (50e3, 20e3), (80e3, 50e3)], 1):
            with open(os.path.join(d, f"dae-r{n}.json"), "w") as f:
                json.dump(bench("dae", ours), f)
            with open(os.path.join(d, f"pytorch-r{n}.json"), "w") as f:
                json.dump([bench("pytorch-eager", theirs)], f)
        got = summary(d)
        want = ["batch 256: dae 80,000 [50,000-100,000] samples/s, 750 [600-1200] ms/epoch",
                "  pytorch-eager    50,000 [20,000-50,000] samples/s; ratio 2.00x [1.60x-2.50x]"]
        assert got[1:] == want, got
        os.remove(os.path.join(d, "pytorch-r2.json"))
        try:
            summary(d)
            raise AssertionError("a round without its peer file was accepted")
        except SystemExit as e:
            assert "pytorch-r2.json: missing" in str(e), e
    print("rounds.py self-test: ok")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    elif len(sys.argv) == 2:
        print("\n".join(summary(sys.argv[1])))
    else:
        sys.exit(__doc__.strip())


if __name__ == "__main__":
    main()
