#!/usr/bin/env python3
"""PyTorch peer of `dae bench` / `dae train`: the same autoencoder trained the
same way, reporting the same metrics in the same JSON schema (dae-bench-1).

Same model: 784-128-64-32-64-128-784, ReLU, logits + BCE (BCEWithLogitsLoss,
mean over all elements, as Keras computes a sigmoid output's BCE); Glorot-
uniform kernels and zero biases; Adam lr 1e-3, betas (0.9, 0.999), eps 1e-7;
data resident on the device as uint8, each batch gathered by index through a
seeded per-epoch permutation and scaled by 1/255 on the device; the last
partial batch kept. (PyTorch puts Adam's eps inside the bias-corrected
denominator, Keras outside; at eps 1e-7 the difference is below the noise.)

Modes: eager, and torch.compile (mode "reduce-overhead": CUDA graphs where it
can). Timing: CUDA events around whole epochs on the GPU, perf_counter on the
CPU; warm-up epoch first, then --repeats epochs, median and spread.

  python3 benches/peers/torch_ae.py --device cuda --json out.json
  python3 benches/peers/torch_ae.py --device cpu --batch-sizes 256,4096
  python3 benches/peers/torch_ae.py --device cuda --train-epochs 20   # accuracy run
"""
import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    def get(stem):
        for suffix in (".gz", ""):
            p = os.path.join(data_dir, stem + suffix)
            if os.path.exists(p):
                return read_idx(p)
        raise SystemExit(f"error: {data_dir}: missing {stem}[.gz]")

    x_train = get("train-images-idx3-ubyte").reshape(-1, 784)
    x_test = get("t10k-images-idx3-ubyte").reshape(-1, 784)
    return x_train, x_test


def build(layers, input_dim):
    widths = [input_dim] + layers + layers[-2::-1] + [input_dim]
    mods = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1])
        nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(lin.bias)
        mods.append(lin)
        if i + 2 < len(widths):
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)  # outputs logits; sigmoid lives in the loss


class Trainer:
    def __init__(self, data_u8, batch, device, precision, compile_mode, seed):
        torch.manual_seed(seed)
        self.device = device
        self.data = torch.from_numpy(np.array(data_u8)).to(device)
        self.n = self.data.shape[0]
        self.batch = batch
        self.model = build([128, 64, 32], self.data.shape[1]).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        if precision == "tf32":
            torch.backends.cuda.matmul.allow_tf32 = True
        elif precision == "fp32":
            torch.backends.cuda.matmul.allow_tf32 = False
        self.autocast = precision == "bf16"
        step = self._step
        if compile_mode:
            step = torch.compile(step, mode="reduce-overhead", dynamic=False)
        self.step = step

    def _step(self, idx):
        x = self.data[idx].float() / 255.0
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(x)
        loss = self.loss_fn(logits.float(), x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def epoch(self):
        perm = torch.randperm(self.n, generator=self.gen).to(self.device)
        total = torch.zeros((), device=self.device)
        for start in range(0, self.n, self.batch):
            idx = perm[start: start + self.batch]
            total += self.step(idx) * idx.shape[0]
        return total  # read back by the caller, once per epoch

    @torch.no_grad()
    def evaluate(self, data_u8):
        x_all = torch.from_numpy(np.array(data_u8)).to(self.device)
        total = 0.0
        for start in range(0, x_all.shape[0], 4096):
            x = x_all[start: start + 4096].float() / 255.0
            logits = self.model(x)
            total += nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum").item()
        return total / x_all.numel()


def timed_epoch(trainer):
    if trainer.device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        total = trainer.epoch()
        end.record()
        end.synchronize()
        return start.elapsed_time(end), total.item()
    t0 = time.perf_counter()
    total = trainer.epoch().item()
    return (time.perf_counter() - t0) * 1e3, total


def device_info(device):
    info = {"kind": device, "torch": torch.__version__, "host": platform.node()}
    if device == "cuda":
        info["name"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        try:
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, check=True).stdout.strip()
        except Exception:
            pass
    else:
        info["name"] = platform.processor() or platform.machine()
        info["threads"] = torch.get_num_threads()
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "fashion-mnist"))
    ap.add_argument("--batch-sizes", default="256,1024,4096,16384,65536")
    ap.add_argument("--precisions", default=None, help="fp32,tf32,bf16 (default: fp32 on CPU, all on CUDA)")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--train-epochs", type=int, default=0, help="also train the lab (batch 256) this many epochs and report val_loss")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    if a.device == "cpu":
        # Same cores as dae (some builds default to one thread).
        torch.set_num_threads(a.threads or os.cpu_count())
    x_train, x_test = load(a.data)
    precisions = (a.precisions or ("fp32,tf32,bf16" if a.device == "cuda" else "fp32")).split(",")
    batches = [int(b) for b in a.batch_sizes.split(",")]
    docs = []
    for mode in a.modes.split(","):
        results = []
        for precision in precisions:
            for batch in batches:
                tr = Trainer(x_train, batch, a.device, precision, mode == "compile", a.seed)
                times = []
                for r in range(a.repeats + 1):  # epoch 0 warms up (and compiles)
                    ms, _ = timed_epoch(tr)
                    if r > 0:
                        times.append(ms)
                steps = -(-x_train.shape[0] // batch)
                med = statistics.median(times)
                row = {"batch": batch, "precision": precision, "steps_per_epoch": steps,
                       "ms_per_epoch": med, "ms_per_step": med / steps,
                       "samples_per_second": x_train.shape[0] / (med / 1e3),
                       "epoch_ms_min": min(times), "epoch_ms_max": max(times), "repeats": a.repeats}
                results.append(row)
                print(f"pytorch-{mode:8} {precision:5} batch {batch:>6}: {med:9.1f} ms/epoch "
                      f"{med / steps:8.3f} ms/step {row['samples_per_second']:>12,.0f} samples/s", flush=True)
        doc = {"schema": "dae-bench-1", "tool": f"pytorch-{mode}", "device": device_info(a.device),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "model": "784-128-64-32-64-128-784", "samples": int(x_train.shape[0]),
               "timer": "cuda events around epochs" if a.device == "cuda" else "host clock around epochs",
               "results": results}
        if a.train_epochs:
            tr = Trainer(x_train, 256, a.device, precisions[0], mode == "compile", a.seed)
            hist = []
            for e in range(a.train_epochs):
                ms, total = timed_epoch(tr)
                hist.append({"epoch": e + 1, "loss": total / x_train.shape[0], "ms": ms})
            doc["lab"] = {"epochs": a.train_epochs, "history": hist, "val_loss": tr.evaluate(x_test),
                          "train_ms": sum(h["ms"] for h in hist)}
            print(f"pytorch-{mode} lab: {a.train_epochs} epochs, val_loss {doc['lab']['val_loss']:.4f}, "
                  f"{doc['lab']['train_ms'] / 1e3:.2f}s of training", flush=True)
        docs.append(doc)
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(docs if len(docs) > 1 else docs[0], f, indent=2)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
