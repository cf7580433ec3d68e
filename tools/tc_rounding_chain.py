#!/usr/bin/env python3
"""How much tf32 / bf16 operand rounding alone moves the lab model's gradients.

An exact float64 forward and backward pass of the 784-128-64-32-64-128-784
autoencoder (Glorot weights, ReLU, logits BCE) on 256 Fashion-MNIST test
images, once exactly and once with both operands of every product rounded
as the tensor-core kernels round them (tf32: cvt.rna, bf16: round to nearest
even). Prints each layer's ||dW_rounded - dW|| / ||dW||, first layer first.
Independent of the kernels: it sets the scale of the model-level tolerances
in crates/model/src/gpu_check.rs. Needs numpy only.
"""
import gzip
import pathlib
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
raw = gzip.open(ROOT / "data/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
DIMS = [784, 128, 64, 32, 64, 128, 784]


def tf32(a):
    u = a.astype(np.float32).view(np.uint32)
    return ((u + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)


def bf16(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def weight_grads(x, weights, rnd):
    mm = lambda a, b: rnd(a) @ rnd(b)
    acts = [x]
    for i, (w, b) in enumerate(weights):
        z = mm(acts[-1], w) + b
        acts.append(z if i == len(weights) - 1 else np.maximum(z, 0))
    d = (1 / (1 + np.exp(-acts[-1])) - x) / x.size
    grads = [None] * len(weights)
    for i in reversed(range(len(weights))):
        grads[i] = mm(acts[i].T, d)
        if i > 0:
            d = mm(d, weights[i][0].T) * (acts[i] > 0)
    return grads


def main():
    images = np.frombuffer(raw, np.uint8).reshape(-1, 784).astype(np.float64) / 255.0
    for seed in range(3):
        r = np.random.default_rng(100 + seed)
        x = images[r.permutation(2000)[:256]]
        weights = []
        for a, b in zip(DIMS, DIMS[1:]):
            lim = np.sqrt(6 / (a + b))
            weights.append((r.uniform(-lim, lim, (a, b)), np.zeros(b)))
        exact = weight_grads(x, weights, lambda a: a)
        for name, rnd in [("tf32", tf32), ("bf16", bf16)]:
            got = weight_grads(x, weights, rnd)
            errs = [np.linalg.norm(g - e) / np.linalg.norm(e) for g, e in zip(got, exact)]
            print(f"seed {seed} {name}: " + " ".join(f"{e:.2e}" for e in errs))


if __name__ == "__main__":
    main()
