#!/usr/bin/env python3
"""Loads a dae run in PyTorch and checks it agrees with dae itself.

  python3 benches/peers/torch_load.py RUN_DIR [--data data/fashion-mnist]

Reads RUN_DIR/encoder.safetensors (y = relu(x @ kernel + bias) per layer) and
RUN_DIR/checkpoint.safetensors (all layers; an nn.Linear weight is a kernel
transposed), encodes the test images, and compares with `dae encode`'s
RUN_DIR/codes-test.npy when present; reports the reconstruction BCE of the
full autoencoder, which should match `dae eval`.
"""
import argparse
import gzip
import json
import os

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "fashion-mnist"))
    a = ap.parse_args()
    raw = gzip.open(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")).read()
    x = torch.from_numpy(np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0)

    enc = load_file(os.path.join(a.run, "encoder.safetensors"))
    widths = json.loads(safe_open(os.path.join(a.run, "encoder.safetensors"), "pt").metadata()["widths"])
    h = x
    for i in range(1, len(widths)):
        h = torch.relu(h @ enc[f"encoder_{i}.kernel"] + enc[f"encoder_{i}.bias"])
    codes_path = os.path.join(a.run, "codes-test.npy")
    if os.path.exists(codes_path):
        diff = float(np.abs(h.numpy() - np.load(codes_path)).max())
        print(f"encoder: max |torch - dae encode| = {diff:.3g}")
        assert diff < 1e-4, "PyTorch and dae disagree on the codes"

    ck = safe_open(os.path.join(a.run, "checkpoint.safetensors"), "pt")
    layers = sorted({k.rsplit(".", 1)[0] for k in ck.keys() if not k.startswith("optimizer")},
                    key=lambda n: (n.split("_")[0] != "encoder", int(n.split("_")[1])))
    z = x
    for i, name in enumerate(layers):
        z = z @ ck.get_tensor(f"{name}.kernel") + ck.get_tensor(f"{name}.bias")
        if i + 1 < len(layers):
            z = torch.relu(z)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, x).item()
    history = json.loads(ck.metadata()["history"])
    print(f"autoencoder ({ck.metadata()['layers']}): test BCE {bce:.6f}; dae's last val_loss {history['val_loss'][-1]:.6f}")
    assert abs(bce - history["val_loss"][-1]) < 1e-4, "PyTorch and dae disagree on the loss"
    print("ok: PyTorch reads the run and agrees with dae")


if __name__ == "__main__":
    main()
