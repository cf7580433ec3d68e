#!/usr/bin/env python3
"""Deletes each __syncthreads() of the GEMM main loops and the reduction
trees, one at a time, and checks that the emulator's race detector
(crates/emu/csrc/runtime.cpp) fails the cases that run it, on every seed
given; the file is restored after each mutant (also on error or Ctrl-C).

    tools/race_mutants.py [--seeds 1,2,3] [--release]

Each mutant rebuilds crates/emu (the kernels are compiled by its build.rs)
and runs crates/emu/tests/kernel_cases.rs's selected_cases_pass on the
cases that launch the mutated kernel. Exit status 0: every mutant caught,
on every seed, as a shared-memory race. benches/NOTES.md records a run.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BARRIER = "__syncthreads();"
# file, barriers it must hold (all of them are main-loop or tree barriers),
# the cases that launch its kernels, their precisions (each run on its own).
MUTANTS = [
    ("kernels/gemm_fp32.cu", 2, "gemm_", "fp32"),
    ("kernels/gemm_tc.cu", 2, "gemm_", "tf32,bf16"),
    ("kernels/reduce.cu", 1, "bias_grad", "fp32"),
    ("kernels/loss.cu", 4, "bce_logits", "fp32"),
]
CARGO = ["cargo", "test", "-q", "-p", "dae-emu", "--test", "kernel_cases"]


def line_of(text, at):
    return text.count("\n", 0, at) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--release", action="store_true", help="cargo's release profile (default: test, as CI's)")
    args = ap.parse_args()
    seeds = args.seeds.split(",")
    if args.release:
        CARGO.insert(2, "--release")
    start = time.time()
    results = []
    for rel, expected, case, precisions in MUTANTS:
        path = ROOT / rel
        original = path.read_bytes()
        text = original.decode()
        sites = []
        at = text.find(BARRIER)
        while at >= 0:
            sites.append(at)
            at = text.find(BARRIER, at + 1)
        if len(sites) != expected:
            sys.exit(f"{rel}: {len(sites)} barriers, expected {expected}: update MUTANTS")
        for at in sites:
            name = f"{rel}:{line_of(text, at)}"
            try:
                path.write_text(text[:at] + "/* mutant: barrier deleted */;" + text[at + len(BARRIER):])
                build = subprocess.run(CARGO + ["--no-run"], cwd=ROOT, capture_output=True, text=True)
                if build.returncode != 0:
                    sys.exit(f"{name}: build failed\n{build.stderr[-3000:]}")
                for seed, precision in [(s, p) for s in seeds for p in precisions.split(",")]:
                    t0 = time.time()
                    env = dict(os.environ, DAE_CHECK_SEED=seed, DAE_EMU_CASE=case, DAE_EMU_PRECISIONS=precision)
                    run = subprocess.run(
                        CARGO + ["--", "--ignored", "--exact", "selected_cases_pass"],
                        cwd=ROOT, env=env, capture_output=True, text=True)
                    out = run.stdout + run.stderr
                    race = next((l.strip() for l in out.splitlines() if "shared-memory race" in l), None)
                    caught = run.returncode != 0 and race is not None
                    results.append((name, seed, precision, caught))
                    print(f"{name:24} {precision} seed {seed}: {'caught' if caught else 'MISSED'}"
                          f" ({time.time() - t0:.1f} s)"
                          + (f"\n    {race[:400]}" if race else ""), flush=True)
            finally:
                path.write_bytes(original)
    missed = [r for r in results if not r[3]]
    print(f"{len(results) - len(missed)}/{len(results)} mutant runs caught in {time.time() - start:.0f} s")
    # Leave the build matching the restored sources.
    subprocess.run(CARGO + ["--no-run"], cwd=ROOT, capture_output=True)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
