#!/usr/bin/env python3
"""Independent offline check (numpy, no GPU) of kernels/gemm_tc.cu and kernels/gemm_fp32.cu.

Unlike an emulation written from the kernel alone, this one keeps two things apart:

  * the PTX ISA's statement of the mma fragment layouts (PTX_* functions below,
    written from the ISA text "Matrix Fragments for mma.m16n8k8" (.tf32) and
    "mma.m16n8k16" (.bf16), cross-checked against microsoft/MMA-Sim's hardware
    tests), and the semantics of `cvt.rn.bf16x2.f32 d, a, b` (a -> UPPER half);
  * a transliteration of the kernel code: the per-thread pointer arithmetic and
    masks of tc_load / f32_load (every dereferenced global index is bounds
    checked), the word offsets of the shared-memory stores and fragment loads,
    the bit patterns stored (tf32 = cvt.rna, bf16x2 packing with the operand
    order parsed from the .cu source), the double-buffer schedule, and the
    epilogue's (row, col) map.

The MMA is emulated from register words only: the A/B matrices are rebuilt by
the PTX layout from what each lane holds, so a wrong register order, a swapped
bf16 half or a wrong epilogue map shows up as a mismatch against a float64
reference of the *rounded* operands (expected agreement ~1e-12).

It also checks, for every barrier interval, that no shared word is written by
one thread and read or written by another (double-buffer races), that no
fragment reads a word never stored (stale / padding data), and that every
output element is written exactly once and nothing outside C is written.
"""
import re
import sys
import pathlib
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
TC_SRC = (ROOT / "kernels" / "gemm_tc.cu").read_text()

# ----------------------------------------------------------------------------
# PTX ISA statements (independent of the kernel)
# ----------------------------------------------------------------------------
# m16n8k8 .tf32: groupID = lane>>2, threadID_in_group = lane%4
#   A (16x8, row): a0:(g, t) a1:(g+8, t) a2:(g, t+4) a3:(g+8, t+4)
#   B (8x8, col) : b0:(k=t, n=g) b1:(k=t+4, n=g)
#   C (16x8)     : c0:(g, 2t) c1:(g, 2t+1) c2:(g+8, 2t) c3:(g+8, 2t+1)
def PTX_A_tf32(lane, i):
    g, t = lane >> 2, lane & 3
    return (g + 8 * (i & 1), t + 4 * (i >> 1))


def PTX_B_tf32(lane, i):
    g, t = lane >> 2, lane & 3
    return (t + 4 * i, g)  # (k, n)


# m16n8k16 .bf16: 8 A elements a0..a7 in 4 regs (a0,a1 | a2,a3 | a4,a5 | a6,a7),
#   lower-indexed element of each pair in the LOWER 16 bits.
#   row = g for a0,a1,a4,a5; g+8 for a2,a3,a6,a7
#   col = 2t + (i&1) for i < 4; 2t + 8 + (i&1) for i >= 4
#   B: b0..b3 in 2 regs: k = 2t + (i&1) for i < 2, 2t + 8 + (i&1) for i >= 2; n = g
def PTX_A_bf16(lane, e):
    g, t = lane >> 2, lane & 3
    row = g if (e % 4) < 2 else g + 8
    col = 2 * t + (e & 1) + (8 if e >= 4 else 0)
    return (row, col)


def PTX_B_bf16(lane, e):
    g, t = lane >> 2, lane & 3
    return (2 * t + (e & 1) + (8 if e >= 2 else 0), g)


def PTX_C(lane, i):
    g, t = lane >> 2, lane & 3
    return (g + 8 * (i >> 1), 2 * t + (i & 1))


# ----------------------------------------------------------------------------
# bit-level conversions
# ----------------------------------------------------------------------------
def f2u(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def u2f(u):
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def cvt_rna_tf32(x):  # round to nearest, ties away; low 13 bits zero (finite inputs)
    u = f2u(x).astype(np.uint64)
    return ((u + 0x1000) & 0xFFFFE000).astype(np.uint32)


def bf16_rn(x):  # RNE to bf16 bits (finite inputs)
    u = f2u(x).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF).astype(np.uint32)


def cvt_rn_bf16x2(a, b):  # PTX: value from a -> upper half, from b -> lower half
    return ((bf16_rn(a) << 16) | bf16_rn(b)).astype(np.uint32)


def bf16_val(bits16):
    return u2f((np.asarray(bits16, dtype=np.uint32) & 0xFFFF) << 16).astype(np.float64)


# Parse the kernel's tc_to_bf16x2(lo, hi) to learn which C++ argument goes to
# which PTX operand, so a swapped asm operand list in the source is caught.
m = re.search(r"tc_to_bf16x2\(float (\w+), float (\w+)\)\s*\{[^}]*?asm\(\"cvt\.rn\.bf16x2\.f32 %0, %(\d), %(\d);\"\s*:\s*\"=r\"\(r\)\s*:\s*\"f\"\((\w+)\),\s*\"f\"\((\w+)\)\)",
              TC_SRC, re.S)
assert m, "could not parse tc_to_bf16x2 in gemm_tc.cu"
_p1, _p2 = m.group(1), m.group(2)           # C++ params, in order
_opA, _opB = int(m.group(3)), int(m.group(4))  # asm operand numbers for PTX a, b
_ops = {1: m.group(5), 2: m.group(6)}       # asm operand number -> C++ name


def tc_to_bf16x2(x, y):  # the kernel's helper: tc_to_bf16x2(<_p1>=x, <_p2>=y)
    env = {_p1: x, _p2: y}
    return cvt_rn_bf16x2(env[_ops[_opA]], env[_ops[_opB]])


for pat in ("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 \"\n        \"{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3}",
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 \"\n        \"{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3}"):
    assert pat in TC_SRC, "mma asm string changed; update the emulator: " + pat.split()[0]
assert '"+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])' in TC_SRC
assert '"r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1])' in TC_SRC


# ----------------------------------------------------------------------------
# machinery: global memory with bounds checks, shared memory with race checks
# ----------------------------------------------------------------------------
class Fail(Exception):
    pass


class Gmem:
    def __init__(self, arr, name):
        self.a = np.ascontiguousarray(arr, dtype=np.float32).ravel()
        self.name = name

    def load(self, idx, ok):
        idx = np.asarray(idx, dtype=np.int64)
        ok = np.asarray(ok, dtype=bool)
        bad = ok & ((idx < 0) | (idx >= self.a.size))
        if bad.any():
            raise Fail(f"out-of-bounds global read of {self.name}: {idx[bad][:4]} (size {self.a.size})")
        return np.where(ok, self.a[np.clip(idx, 0, self.a.size - 1)], np.float32(0))


POISON = np.uint32(0x7FC0DEAD)


class Smem:
    def __init__(self, words, name):
        self.w = np.full(words, POISON, dtype=np.uint32)
        self.written = np.zeros(words, dtype=bool)
        self.name = name
        self.new_epoch()

    def new_epoch(self):
        self.wr = {}  # word -> set(tid)
        self.rd = {}

    def store(self, tids, idx, vals):
        idx = np.asarray(idx).ravel(); tids = np.broadcast_to(tids, idx.shape).ravel()
        vals = np.broadcast_to(vals, idx.shape).ravel()
        if ((idx < 0) | (idx >= self.w.size)).any():
            raise Fail(f"smem store out of {self.name}")
        self.w[idx] = vals
        self.written[idx] = True
        for t, i in zip(tids.tolist(), idx.tolist()):
            self.wr.setdefault(i, set()).add(t)

    def load(self, tids, idx):
        idx = np.asarray(idx); flat = idx.ravel()
        tflat = np.broadcast_to(tids, idx.shape).ravel()
        if ((flat < 0) | (flat >= self.w.size)).any():
            raise Fail(f"smem load out of {self.name}")
        if not self.written[flat].all():
            raise Fail(f"fragment/tile read of a never-written word of {self.name} (padding or stale)")
        for t, i in zip(tflat.tolist(), flat.tolist()):
            self.rd.setdefault(i, set()).add(t)
        return self.w[idx]

    def barrier(self):
        for i, ws in self.wr.items():
            if len(ws) > 1:
                raise Fail(f"{self.name}: word {i} written by several threads in one barrier interval")
            others = self.rd.get(i, set()) - ws
            if others:
                raise Fail(f"{self.name}: RACE word {i} written by {ws} and read by {sorted(others)[:3]} "
                           "in the same barrier interval")
        self.new_epoch()


class Out:
    def __init__(self, rows, cols, name):
        self.C = np.full(rows * cols, np.nan, dtype=np.float64)
        self.count = np.zeros(rows * cols, dtype=np.int64)
        self.name = name

    def store(self, idx, val):
        if idx < 0 or idx >= self.C.size:
            raise Fail(f"out-of-bounds write to {self.name}: {idx}")
        self.C[idx] = val
        self.count[idx] += 1


# ----------------------------------------------------------------------------
# gemm_tc.cu transliteration (vectorised over the 128 threads of a block)
# ----------------------------------------------------------------------------
TC_BM = TC_BN = 64; TC_BK = 32; TC_THREADS = 128
LDS_TF32 = TC_BK + 4; LDS_BF16 = TC_BK // 2 + 4
TID = np.arange(TC_THREADS)


def tc_base(prec, kc, tid):
    if kc:
        if prec == "tf32":
            return tid >> 5, tid & 31
        return tid >> 4, 2 * (tid & 15)
    ib = (tid & 7) | (((tid >> 5) & 3) << 3)
    kb = ((tid >> 3) & 3) if prec == "tf32" else 2 * ((tid >> 3) & 3)
    return ib, kb


def tc_load(prec, kc, G, ptr, ld, rrem, krem):
    r = [None] * 16
    if prec == "tf32" and kc:
        kok = krem > 0
        for q in range(16):
            r[q] = G.load(ptr, kok & (4 * q < rrem)); ptr = ptr + 4 * ld
    elif prec == "tf32":
        r0ok, r1ok = rrem > 0, rrem > 32
        for j in range(8):
            kok = 4 * j < krem
            r[2 * j] = G.load(ptr, kok & r0ok)
            r[2 * j + 1] = G.load(ptr + 32, kok & r1ok)
            ptr = ptr + 4 * ld
    elif kc:
        k0ok, k1ok = krem > 0, krem > 1
        for q in range(8):
            rok = 8 * q < rrem
            r[2 * q] = G.load(ptr, rok & k0ok)
            r[2 * q + 1] = G.load(ptr + 1, rok & k1ok)
            ptr = ptr + 8 * ld
    else:
        r0ok, r1ok = rrem > 0, rrem > 32
        for j in range(4):
            k0ok, k1ok = 8 * j < krem, 8 * j + 1 < krem
            r[4 * j] = G.load(ptr, r0ok & k0ok)
            r[4 * j + 1] = G.load(ptr + ld, r0ok & k1ok)
            r[4 * j + 2] = G.load(ptr + 32, r1ok & k0ok)
            r[4 * j + 3] = G.load(ptr + ld + 32, r1ok & k1ok)
            ptr = ptr + 8 * ld
    return r


def tc_store(prec, kc, S, s, r, is_a=False):
    pack = PACK_A if is_a else tc_to_bf16x2
    if prec == "tf32" and kc:
        for q in range(16):
            S.store(TID, s + 4 * q * LDS_TF32, cvt_rna_tf32(r[q]))
    elif prec == "tf32":
        for j in range(8):
            S.store(TID, s + 4 * j, cvt_rna_tf32(r[2 * j]))
            S.store(TID, s + 32 * LDS_TF32 + 4 * j, cvt_rna_tf32(r[2 * j + 1]))
    elif kc:
        for q in range(8):
            S.store(TID, s + 8 * q * LDS_BF16, pack(r[2 * q], r[2 * q + 1]))
    else:
        for j in range(4):
            S.store(TID, s + 4 * j, pack(r[4 * j], r[4 * j + 1]))
            S.store(TID, s + 32 * LDS_BF16 + 4 * j, pack(r[4 * j + 2], r[4 * j + 3]))


ONE_STAGE = False      # the self-test writes the next tile over the current one
PACK_A = tc_to_bf16x2  # the self-test swaps the halves of the A operand only
LANE = np.arange(32)


def mma_emulate(prec, acc, a_words, b_words):
    """acc[32,4] += A*B where A, B are rebuilt from the lanes' registers by the PTX layout."""
    if prec == "tf32":
        A = np.full((16, 8), np.nan); B = np.full((8, 8), np.nan)
        for lane in range(32):
            for i in range(4):
                r, c = PTX_A_tf32(lane, i)
                A[r, c] = u2f(a_words[lane, i] & 0xFFFFE000)  # tf32 uses the top 19 bits
            for i in range(2):
                k, n = PTX_B_tf32(lane, i)
                B[k, n] = u2f(b_words[lane, i] & 0xFFFFE000)
    else:
        A = np.full((16, 16), np.nan); B = np.full((16, 8), np.nan)
        for lane in range(32):
            for e in range(8):
                w = a_words[lane, e // 2]
                r, c = PTX_A_bf16(lane, e)
                A[r, c] = bf16_val(w >> (16 * (e & 1)))  # lower-indexed element in the low half
            for e in range(4):
                w = b_words[lane, e // 2]
                k, n = PTX_B_bf16(lane, e)
                B[k, n] = bf16_val(w >> (16 * (e & 1)))
    assert not np.isnan(A).any() and not np.isnan(B).any()
    D = A @ B
    for lane in range(32):
        for i in range(4):
            r, c = PTX_C(lane, i)
            acc[lane, i] += D[r, c]


def tc_compute(prec, As, Bs, a_off, b_off, acc):
    LDS = LDS_TF32 if prec == "tf32" else LDS_BF16
    KSTEPS = TC_BK // 8 if prec == "tf32" else TC_BK // 16
    for warp in range(4):
        wm, wn = warp >> 1, warp & 1
        tids = warp * 32 + LANE
        g, tig = LANE >> 2, LANE & 3
        for ks in range(KSTEPS):
            c = ks * 8 + tig
            af = []
            for mt in range(2):
                r = wm * 32 + mt * 16 + g
                idx = np.stack([r * LDS + c, (r + 8) * LDS + c, r * LDS + c + 4, (r + 8) * LDS + c + 4], 1)
                af.append(As.load(tids[:, None], a_off + idx))
            bf = []
            for nt in range(4):
                n = wn * 32 + nt * 8 + g
                idx = np.stack([n * LDS + c, n * LDS + c + 4], 1)
                bf.append(Bs.load(tids[:, None], b_off + idx))
            for mt in range(2):
                for nt in range(4):
                    mma_emulate(prec, acc[warp, mt, nt], af[mt], bf[nt])


def tc_mainloop(prec, akc, bkc, GA, lda, arows, GB, ldb, brows, m0, n0, kbeg, kend):
    LDS = LDS_TF32 if prec == "tf32" else LDS_BF16
    STAGE = TC_BM * LDS
    As = Smem(2 * STAGE, "As"); Bs = Smem(2 * STAGE, "Bs")
    acc = np.zeros((4, 2, 4, 32, 4))
    ntiles = (kend - kbeg + TC_BK - 1) // TC_BK if kend > kbeg else 0
    if ntiles == 0:
        return acc
    aib, akb = tc_base(prec, akc, TID); bib, bkb = tc_base(prec, bkc, TID)
    pa = (m0 + aib) * lda + (kbeg + akb) if akc else (kbeg + akb) * lda + (m0 + aib)
    pb = (n0 + bib) * ldb + (kbeg + bkb) if bkc else (kbeg + bkb) * ldb + (n0 + bib)
    astep = TC_BK if akc else TC_BK * lda
    bstep = TC_BK if bkc else TC_BK * ldb
    arrem = arows - m0 - aib; brrem = brows - n0 - bib
    akrem = kend - kbeg - akb; bkrem = kend - kbeg - bkb
    WPR = 1 if prec == "tf32" else 2
    sa = aib * LDS + akb // WPR; sb = bib * LDS + bkb // WPR
    ra = tc_load(prec, akc, GA, pa, lda, arrem, akrem)
    rb = tc_load(prec, bkc, GB, pb, ldb, brrem, bkrem)
    tc_store(prec, akc, As, sa, ra, True); tc_store(prec, bkc, Bs, sb, rb)
    As.barrier(); Bs.barrier()
    for t in range(ntiles):
        cur = (t & 1) * STAGE
        more = t + 1 < ntiles
        if more:
            pa = pa + astep; pb = pb + bstep
            akrem = akrem - TC_BK; bkrem = bkrem - TC_BK
            ra = tc_load(prec, akc, GA, pa, lda, arrem, akrem)
            rb = tc_load(prec, bkc, GB, pb, ldb, brrem, bkrem)
        tc_compute(prec, As, Bs, cur, cur, acc)
        if more:
            nxt = cur if ONE_STAGE else STAGE - cur
            tc_store(prec, akc, As, nxt + sa, ra, True); tc_store(prec, bkc, Bs, nxt + sb, rb)
        As.barrier(); Bs.barrier()
    return acc


def tc_epilogue(out, rows, cols, m0, n0, acc, f, base=0):
    for warp in range(4):
        wm, wn = warp >> 1, warp & 1
        for lane in range(32):
            g, tig = lane >> 2, lane & 3
            for mt in range(2):
                for h in range(2):
                    row = m0 + wm * 32 + mt * 16 + g + h * 8
                    if row >= rows:
                        continue
                    for nt in range(4):
                        col = n0 + wn * 32 + nt * 8 + 2 * tig
                        if col >= cols:
                            continue
                        two = col + 1 < cols
                        v0, v1 = acc[warp, mt, nt, lane, 2 * h], acc[warp, mt, nt, lane, 2 * h + 1]
                        p = base + row * cols + col
                        out.store(p, f(v0, row, col))
                        if two:
                            out.store(p + 1, f(v1, row, col + 1))


def cdiv(a, b):
    return -(-a // b)


def split_range(s, per, total):  # the kernels' *_split_range
    r0 = min(total, s * per)
    return r0, min(total, r0 + per)


def split_per(total, hint):  # a few splits per case keep the run short
    return hint if cdiv(total, hint) <= 4 else cdiv(total, 3)


ACT = {0: lambda z: z, 1: lambda z: np.maximum(z, np.float32(0)),
       2: lambda z: (np.float32(1) / (np.float32(1) + np.exp(-z))).astype(np.float32)}


def split_sum(P):  # Σ_s partial[s] in split order, fp32 (split_sum / split_sum4)
    acc = P[0].astype(np.float32).copy()
    for s in range(1, P.shape[0]):
        acc = (acc + P[s].astype(np.float32)).astype(np.float32)
    return acc


def splitk_bias_act(P, bias, M, N, act, vec):
    """reduce.cu splitk_bias_act: vec = the float4 path (taken when N % 4 == 0)."""
    count = M * N
    v = split_sum(P.reshape(P.shape[0], count))
    col = np.empty(count, dtype=np.int64)
    if vec:
        assert N % 4 == 0
        i = np.arange(count // 4)
        c = (4 * i) % N
        for j in range(4):
            col[4 * i + j] = c + j
    else:
        col[:] = np.arange(count) % N
    if (col < 0).any() or (col >= N).any():
        raise Fail("splitk_bias_act: bias index out of range")
    if bias is not None:
        v = (v + bias[col]).astype(np.float32)
    return ACT[act](v)


def splitk_mask(P, mask, count):
    v = split_sum(P.reshape(P.shape[0], count))
    return v if mask is None else np.where(mask.ravel() > 0, v, np.float32(0))


def check_finish(got, ref, what):
    err = np.abs(got.astype(np.float64) - ref.ravel()).max() if ref.size else 0.0
    if not err <= 1e-5 * max(1.0, np.abs(ref).max() if ref.size else 1.0):
        raise Fail(f"{what}: split-K finish max abs err {err:.3e}")
    return err


def check_finishes(P_fwd, P_dx, bias, mask, M, N, K, ref_prod, ref_dx, what):
    """The finish kernels on the emulated partials, both paths where legal."""
    for act in (0, 1, 2):
        ref = ref_prod + bias.astype(np.float64)
        ref = {0: ref, 1: np.maximum(ref, 0), 2: 1 / (1 + np.exp(-ref))}[act]
        for vec in ((False, True) if N % 4 == 0 else (False,)):
            check_finish(splitk_bias_act(P_fwd, bias, M, N, act, vec), ref, f"{what} bias_act {act}")
    check_finish(splitk_bias_act(P_fwd, None, M, N, 0, False), ref_prod, f"{what} no bias")
    check_finish(splitk_mask(P_dx, mask, M * K), ref_dx * (mask > 0), f"{what} mask")
    check_finish(splitk_mask(P_dx, None, M * K), ref_dx, f"{what} no mask")


def split_products(mainloop, epilogue, GX, GW, GdY, M, N, K, hint, ref_part_fwd, ref_part_dx, what):
    """gemm_fwd_partial_* / gemm_dx_partial_*: every split (plus one extra,
    empty split that must write zeros) into one buffer at partial + s*M*cols;
    each split's slice against the exact product of its k (n) range."""
    out = {}
    for name, red, cols, akc, bkc, GA, lda, GB, ldb, brows, ref_part in (
            ("fwd", K, N, True, False, GX, K, GW, N, N, ref_part_fwd),
            ("dx", N, K, True, True, GdY, N, GW, N, K, ref_part_dx)):
        per = split_per(red, hint)
        splits = cdiv(red, per) + 1
        P = Out(splits * M, cols, f"{name} partial")
        for s in range(splits):
            r0, r1 = split_range(s, per, red)
            for by in range(cdiv(M, 64)):
                for bx in range(cdiv(cols, 64)):
                    acc = mainloop(akc, bkc, GA, lda, M, GB, ldb, brows, by * 64, bx * 64, r0, r1)
                    epilogue(P, M, cols, by * 64, bx * 64, acc, lambda v, r, c: v, s * M * cols)
        if (P.count != 1).any():
            raise Fail(f"{what} {name}_partial: elements not written exactly once")
        C = P.C.reshape(splits, M, cols)
        for s in range(splits):
            r0, r1 = split_range(s, per, red)
            check_exact(C[s], ref_part(r0, r1), f"{what} {name}_partial split {s} [{r0},{r1})")
        out[name] = C.astype(np.float32)
    return out["fwd"], out["dx"]


def run_tc(prec, M, N, K, rps, rng, kps=None):
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((K, N)).astype(np.float32)
    dY = rng.standard_normal((M, N)).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    mask = (rng.standard_normal((M, K)) > 0).astype(np.float32)
    if prec == "tf32":
        rnd = lambda a: u2f(cvt_rna_tf32(a)).astype(np.float64)
    else:
        rnd = lambda a: bf16_val(bf16_rn(a))
    GX, GW, GdY = Gmem(X, "X"), Gmem(W, "W"), Gmem(dY, "dY")
    errs = []
    # fwd: A(m,k)=X[m*K+k] (KC), B(n,k)=W[k*N+n] (!KC); epilogue: + bias, identity
    Y = Out(M, N, "Y")
    for by in range(cdiv(M, 64)):
        for bx in range(cdiv(N, 64)):
            acc = tc_mainloop(prec, True, False, GX, K, M, GW, N, N, by * 64, bx * 64, 0, K)
            tc_epilogue(Y, M, N, by * 64, bx * 64, acc, lambda v, r, c: v + float(bias[c]))
    ref = rnd(X) @ rnd(W) + bias.astype(np.float64)
    errs.append(check(Y, ref, "fwd"))
    # dx: A(m,r)=dY[m*N+r] (KC), B(k,r)=W[k*N+r] (KC), mask
    dX = Out(M, K, "dX")
    for by in range(cdiv(M, 64)):
        for bx in range(cdiv(K, 64)):
            acc = tc_mainloop(prec, True, True, GdY, N, M, GW, N, K, by * 64, bx * 64, 0, N)
            tc_epilogue(dX, M, K, by * 64, bx * 64, acc, lambda v, r, c: v if mask[r, c] > 0 else 0.0)
    ref = (rnd(dY) @ rnd(W).T) * (mask > 0)
    errs.append(check(dX, ref, "dx"))
    # dw: A(k,r)=X[r*K+k] (!KC), B(n,r)=dY[r*N+n] (!KC), split over rows
    splits = cdiv(M, rps) + 1  # one extra, empty split: must write zeros
    tot = np.zeros((K, N))
    for s in range(splits):
        r0 = min(M, s * rps); r1 = min(M, r0 + rps)
        P = Out(K, N, f"partial[{s}]")
        for by in range(cdiv(K, 64)):
            for bx in range(cdiv(N, 64)):
                acc = tc_mainloop(prec, False, False, GX, K, K, GdY, N, N, by * 64, bx * 64, r0, r1)
                tc_epilogue(P, K, N, by * 64, bx * 64, acc, lambda v, r, c: v)
        check(P, rnd(X[r0:r1]).T @ rnd(dY[r0:r1]), f"dw split {s}")
        tot += P.C.reshape(K, N)
    errs.append(np.abs(tot - rnd(X).T @ rnd(dY)).max() if tot.size else 0.0)
    if kps is not None:
        rX, rW, rdY = rnd(X), rnd(W), rnd(dY)
        ml = lambda akc, bkc, *a: tc_mainloop(prec, akc, bkc, *a)
        Pf, Pd = split_products(ml, tc_epilogue, GX, GW, GdY, M, N, K, kps,
                                lambda k0, k1: rX[:, k0:k1] @ rW[k0:k1],
                                lambda n0, n1: rdY[:, n0:n1] @ rW[:, n0:n1].T, prec)
        check_finishes(Pf, Pd, bias, mask, M, N, K, rX @ rW, rdY @ rW.T, prec)
    return errs


def check_exact(C, ref, what):
    err = np.abs(C.ravel() - ref.ravel()).max() if ref.size else 0.0
    if not err <= 1e-9 * max(1.0, np.abs(ref).max() if ref.size else 1.0):
        raise Fail(f"{what}: max abs err {err:.3e} vs exact product of rounded operands")
    return err


def check(out, ref, what):
    if (out.count != 1).any():
        bad = np.nonzero(out.count != 1)[0]
        raise Fail(f"{what}: {len(bad)} elements written {out.count[bad[0]]} times (first at {bad[0]})")
    err = np.abs(out.C - ref.ravel()).max() if ref.size else 0.0
    scale = max(1.0, np.abs(ref).max() if ref.size else 1.0)
    if not err <= 1e-9 * scale:
        raise Fail(f"{what}: max abs err {err:.3e} vs exact product of rounded operands")
    return err


# ----------------------------------------------------------------------------
# gemm_fp32.cu transliteration (vectorised over 256 threads)
# ----------------------------------------------------------------------------
F_TID = np.arange(256); F_LDS = 68; F_BK = 16


def f32_base(kc, tid):
    return (tid >> 4, tid & 15) if kc else (tid & 63, tid >> 6)


def f32_load(kc, G, ptr, ld, rrem, krem):
    step = 16 * ld if kc else 4 * ld
    r = []
    for q in range(4):
        ok = (krem > 0) & (16 * q < rrem) if kc else (rrem > 0) & (4 * q < krem)
        r.append(G.load(ptr, ok)); ptr = ptr + step
    return r


def f32_store(kc, S, s, r):
    for q in range(4):
        S.store(F_TID, s + (16 * q if kc else 4 * q * F_LDS), f2u(r[q]))


def f32_mainloop(akc, bkc, GA, lda, arows, GB, ldb, brows, m0, n0, kbeg, kend):
    STAGE = F32_STAGE = F_BK * F_LDS
    As = Smem(2 * STAGE, "As"); Bs = Smem(2 * STAGE, "Bs")
    acc = np.zeros((256, 4, 4))
    ntiles = (kend - kbeg + F_BK - 1) // F_BK if kend > kbeg else 0
    if ntiles == 0:
        return acc
    aib, akb = f32_base(akc, F_TID); bib, bkb = f32_base(bkc, F_TID)
    pa = (m0 + aib) * lda + (kbeg + akb) if akc else (kbeg + akb) * lda + (m0 + aib)
    pb = (n0 + bib) * ldb + (kbeg + bkb) if bkc else (kbeg + bkb) * ldb + (n0 + bib)
    astep = F_BK if akc else F_BK * lda
    bstep = F_BK if bkc else F_BK * ldb
    arrem = arows - m0 - aib; brrem = brows - n0 - bib
    akrem = kend - kbeg - akb; bkrem = kend - kbeg - bkb
    sa = akb * F_LDS + aib; sb = bkb * F_LDS + bib
    ra = f32_load(akc, GA, pa, lda, arrem, akrem); rb = f32_load(bkc, GB, pb, ldb, brrem, bkrem)
    f32_store(akc, As, sa, ra); f32_store(bkc, Bs, sb, rb)
    As.barrier(); Bs.barrier()
    ty, tx = F_TID >> 4, F_TID & 15
    for t in range(ntiles):
        cur = t & 1
        more = t + 1 < ntiles
        if more:
            pa = pa + astep; pb = pb + bstep; akrem = akrem - F_BK; bkrem = bkrem - F_BK
            ra = f32_load(akc, GA, pa, lda, arrem, akrem); rb = f32_load(bkc, GB, pb, ldb, brrem, bkrem)
        for kk in range(F_BK):
            ia = cur * STAGE + kk * F_LDS + ty[:, None] * 4 + np.arange(4)
            ib = cur * STAGE + kk * F_LDS + tx[:, None] * 4 + np.arange(4)
            if (ia % 4 != np.arange(4)).any() or (ib % 4 != np.arange(4)).any():
                raise Fail("float4 smem read misaligned")
            a4 = u2f(As.load(F_TID[:, None], ia)).astype(np.float64)
            b4 = u2f(Bs.load(F_TID[:, None], ib)).astype(np.float64)
            acc += a4[:, :, None] * b4[:, None, :]
        if more:
            nxt = (cur ^ 1) * STAGE
            f32_store(akc, As, nxt + sa, ra); f32_store(bkc, Bs, nxt + sb, rb)
        As.barrier(); Bs.barrier()
    return acc


def f32_epilogue(out, rows, cols, m0, n0, acc, f, base=0):
    for tid in range(256):
        ty, tx = tid >> 4, tid & 15
        for a in range(4):
            row = m0 + ty * 4 + a
            if row >= rows:
                continue
            for b in (0, 2):
                col = n0 + tx * 4 + b
                if col >= cols:
                    continue
                p = base + row * cols + col
                out.store(p, f(acc[tid, a, b], row, col))
                if col + 1 < cols:
                    out.store(p + 1, f(acc[tid, a, b + 1], row, col + 1))


def run_f32(M, N, K, rps, rng, kps=None):
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((K, N)).astype(np.float32)
    dY = rng.standard_normal((M, N)).astype(np.float32)
    mask = (rng.standard_normal((M, K)) > 0).astype(np.float32)
    GX, GW, GdY = Gmem(X, "X"), Gmem(W, "W"), Gmem(dY, "dY")
    f64 = lambda a: a.astype(np.float64)
    Y = Out(M, N, "Y")
    for by in range(cdiv(M, 64)):
        for bx in range(cdiv(N, 64)):
            acc = f32_mainloop(True, False, GX, K, M, GW, N, N, by * 64, bx * 64, 0, K)
            f32_epilogue(Y, M, N, by * 64, bx * 64, acc, lambda v, r, c: v)
    e1 = check(Y, f64(X) @ f64(W), "f32 fwd")
    dX = Out(M, K, "dX")
    for by in range(cdiv(M, 64)):
        for bx in range(cdiv(K, 64)):
            acc = f32_mainloop(True, True, GdY, N, M, GW, N, K, by * 64, bx * 64, 0, N)
            f32_epilogue(dX, M, K, by * 64, bx * 64, acc, lambda v, r, c: v if mask[r, c] > 0 else 0.0)
    e2 = check(dX, (f64(dY) @ f64(W).T) * (mask > 0), "f32 dx")
    e3 = 0.0
    for s in range(cdiv(M, rps) + 1):
        r0 = min(M, s * rps); r1 = min(M, r0 + rps)
        P = Out(K, N, f"partial[{s}]")
        for by in range(cdiv(K, 64)):
            for bx in range(cdiv(N, 64)):
                acc = f32_mainloop(False, False, GX, K, K, GdY, N, N, by * 64, bx * 64, r0, r1)
                f32_epilogue(P, K, N, by * 64, bx * 64, acc, lambda v, r, c: v)
        e3 = max(e3, check(P, f64(X[r0:r1]).T @ f64(dY[r0:r1]), f"f32 dw split {s}"))
    if kps is not None:
        bias = rng.standard_normal(N).astype(np.float32)
        Pf, Pd = split_products(f32_mainloop, f32_epilogue, GX, GW, GdY, M, N, K, kps,
                                lambda k0, k1: f64(X[:, k0:k1]) @ f64(W[k0:k1]),
                                lambda n0, n1: f64(dY[:, n0:n1]) @ f64(W[:, n0:n1]).T, "fp32")
        check_finishes(Pf, Pd, bias, mask, M, N, K, f64(X) @ f64(W), f64(dY) @ f64(W).T, "fp32")
    return [e1, e2, e3]


# ----------------------------------------------------------------------------
def self_test():
    """The checker must reject a wrong layout: swap the bf16 halves of A only
    (swapping both operands' halves is a consistent permutation of k and is
    harmless), or reorder the tf32 A registers."""
    global PACK_A
    rng = np.random.default_rng(0)
    PACK_A = lambda x, y: tc_to_bf16x2(y, x)
    try:
        run_tc("bf16", 5, 9, 20, 32, rng)
        raise SystemExit("self-test: swapped bf16 halves of A were NOT detected")
    except Fail:
        pass
    finally:
        PACK_A = tc_to_bf16x2
    global PTX_A_tf32
    goodA = PTX_A_tf32
    PTX_A_tf32 = lambda lane, i: goodA(lane, [0, 2, 1, 3][i])
    try:
        run_tc("tf32", 17, 9, 20, 32, rng)
        raise SystemExit("self-test: a0..a3 order change was NOT detected")
    except Fail:
        pass
    finally:
        PTX_A_tf32 = goodA
    global ONE_STAGE
    ONE_STAGE = True
    try:
        run_tc("tf32", 5, 9, 70, 32, rng)
        raise SystemExit("self-test: a single-stage (racy) pipeline was NOT detected")
    except Fail as ex:
        assert "RACE" in str(ex), ex
    finally:
        ONE_STAGE = False
    print("self-test: layout mutations and a pipeline race are detected")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    self_test()
    rng = np.random.default_rng(7)
    # (M, N, K, rows_per_split of dW, k/n_per_split hint of the split-K fwd/dx
    # partials (split_per keeps each at <= 4 splits, plus one empty split))
    shapes = [(1, 1, 1, 1, 1), (70, 45, 37, 32, 32), (3, 65, 66, 29, 29), (65, 1, 33, 64, 16),
              (1, 130, 7, 1, 3), (129, 64, 100, 96, 32), (64, 64, 64, 32, 32), (40, 3, 1, 7, 1),
              (2, 2, 95, 2, 40)]
    if quick:
        shapes = shapes[:4]
    ok = True
    for (M, N, K, rps, kps) in shapes:
        for prec in ("tf32", "bf16"):
            try:
                e = run_tc(prec, M, N, K, rps, rng, kps)
                print(f"{prec:5s} M={M:4d} N={N:4d} K={K:4d} rps={rps:3d}  fwd {e[0]:.1e} dx {e[1]:.1e} dw {e[2]:.1e}  + split-K fwd/dx OK")
            except Fail as ex:
                ok = False
                print(f"{prec:5s} M={M} N={N} K={K}: FAIL {ex}")
        try:
            e = run_f32(M, N, K, rps, rng, kps)
            print(f"fp32  M={M:4d} N={N:4d} K={K:4d} rps={rps:3d}  fwd {e[0]:.1e} dx {e[1]:.1e} dw {e[2]:.1e}  + split-K fwd/dx OK")
        except Fail as ex:
            ok = False
            print(f"fp32  M={M} N={N} K={K}: FAIL {ex}")
    print("ALL OK" if ok else "FAILURES")
    sys.exit(0 if ok else 1)
