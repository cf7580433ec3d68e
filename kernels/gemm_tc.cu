// Dense-layer GEMMs on the tensor cores through mma.sync (sm_80+):
//   *_tf32: mma.sync.m16n8k8  .tf32 x .tf32 -> fp32 accumulate
//   *_bf16: mma.sync.m16n8k16 .bf16 x .bf16 -> fp32 accumulate
//
// Self-contained: no #include; conversions are inline PTX. Compiled at run
// time by NVRTC with --std=c++17 -arch=compute_80|compute_90 --fmad=true.
// Under DAE_HOST_EMULATION (crates/emu, tests on the CPU) the four PTX
// helpers call the emulator's model of the same instructions instead.
//
// Tensors stay fp32 in device memory (one copy of each). Operands are read
// from global memory as fp32 into registers, converted (cvt.rna.tf32.f32 or
// cvt.rn.bf16x2.f32) and stored to shared memory in the MMA operand format.
//
// Tiling: one 64x64 output tile per block, BK = 32, 128 threads = 4 warps in
// a 2x2 arrangement, each warp a 32x32 sub-tile (2 m16 x 4 n8 MMA tiles,
// 32 fp32 accumulators per thread). Two shared-memory stages, filled through
// registers so the next tile's global loads overlap the current tile's MMAs.
// Each output element is accumulated by one thread in a fixed k order:
// results are deterministic.
//
// Launch (see kernels/README.md): blockDim = (128,1,1), no dynamic smem,
//   gemm_fwd_<p>        : grid = (ceil(N/64), ceil(M/64), 1)
//   gemm_dx_<p>         : grid = (ceil(K/64), ceil(M/64), 1)
//   gemm_dw_<p>         : grid = (ceil(N/64), ceil(K/64), splits)
//   gemm_fwd_partial_<p>: grid = (ceil(N/64), ceil(M/64), splits)   split-K over K
//   gemm_dx_partial_<p> : grid = (ceil(K/64), ceil(M/64), splits)   split-K over N
// The partial products are finished by splitk_bias_act / splitk_mask
// (fwd / dx) and reduce_splits (dw) in kernels/reduce.cu.

#define TC_BM 64
#define TC_BN 64
#define TC_BK 32
#define TC_THREADS 128
// Designed for 4 blocks per SM (16 warps), which caps registers at 128;
// CI (tools/check_kernels.py) fails if ptxas needs more.
#define TC_MIN_BLOCKS 4
#define TC_LDS_TF32 (TC_BK + 4)      // words per smem row (tf32): conflict-free fragments
#define TC_LDS_BF16 (TC_BK / 2 + 4)  // words per smem row (bf16 pairs)

#define PREC_TF32 0
#define PREC_BF16 1

__device__ __forceinline__ unsigned tc_to_tf32(float x) {
#ifdef DAE_HOST_EMULATION
    return dae_emu::cvt_rna_tf32(x);
#else
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
#endif
}

// Packs bf16(lo) into bits 0..15 and bf16(hi) into bits 16..31 (round to nearest even).
__device__ __forceinline__ unsigned tc_to_bf16x2(float lo, float hi) {
#ifdef DAE_HOST_EMULATION
    return dae_emu::cvt_rn_bf16x2(hi, lo);  // the asm's operands, in its order
#else
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#endif
}

__device__ __forceinline__ void tc_mma_tf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#ifdef DAE_HOST_EMULATION
    dae_emu::mma_m16n8k8_tf32(c, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

__device__ __forceinline__ void tc_mma_bf16(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#ifdef DAE_HOST_EMULATION
    dae_emu::mma_m16n8k16_bf16(c, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Operand view: rows x reduction. KC = true: element (row, k) at p[row*ld + k];
// KC = false: at p[k*ld + row]. Both operands are stored in shared memory as
// S[row][k] (k contiguous), the layout the m16n8 fragments want for A
// (row-major) and for B (col-major, i.e. S[n][k]).
//
// Thread -> element maps (the thread's base (ib, kb) is fixed; per-register
// offsets are compile-time constants, so a tile load is a few pointer adds):
//  tf32 (64 rows x 32 k, 16 elements per thread):
//   KC : ib = tid>>5, kb = tid&31;               r[q]      = (ib + 4q,     kb)
//        (a warp reads one row's 128 contiguous bytes)
//   !KC: ib = (tid&7) | ((tid>>5)&3)<<3, kb = (tid>>3)&3;
//                                                r[2j + h] = (ib + 32h,    kb + 4j)
//        (a warp reads 4 k-rows x 32 contiguous bytes; smem stores conflict-free)
//  bf16 (64 rows x 16 k-pairs, 8 pairs per thread; a pair is k, k+1 -> one 32-bit word):
//   KC : ib = tid>>4, kb = 2*(tid&15);           pair q    = (ib + 8q,     kb)
//   !KC: ib as tf32 !KC, kb = 2*((tid>>3)&3);    pair 2j+h = (ib + 32h,    kb + 8j)
// Shared rows are padded (36 / 20 words) so fragment loads are conflict-free.
template <int PREC, bool KC>
__device__ __forceinline__ void tc_base(int tid, int& ib, int& kb) {
    if (KC) {
        if (PREC == PREC_TF32) { ib = tid >> 5; kb = tid & 31; }
        else                   { ib = tid >> 4; kb = 2 * (tid & 15); }
    } else {
        ib = (tid & 7) | (((tid >> 5) & 3) << 3);
        kb = PREC == PREC_TF32 ? ((tid >> 3) & 3) : 2 * ((tid >> 3) & 3);
    }
}

// ptr -> element (ib, kb) of the current tile; rrem = rows left from ib;
// krem = reduction indices left from kb. Out-of-range elements read as 0.
template <int PREC, bool KC>
__device__ __forceinline__ void tc_load(const float* __restrict__ ptr, int ld, int rrem, int krem,
                                        float (&r)[16]) {
    if (PREC == PREC_TF32 && KC) {
        const bool kok = krem > 0;
        const size_t step = (size_t)4 * ld;
#pragma unroll
        for (int q = 0; q < 16; ++q) {
            r[q] = (kok && 4 * q < rrem) ? ptr[0] : 0.0f;
            ptr += step;
        }
    } else if (PREC == PREC_TF32) {
        const bool r0ok = rrem > 0, r1ok = rrem > 32;
        const size_t step = (size_t)4 * ld;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const bool kok = 4 * j < krem;
            r[2 * j]     = (kok && r0ok) ? ptr[0] : 0.0f;
            r[2 * j + 1] = (kok && r1ok) ? ptr[32] : 0.0f;
            ptr += step;
        }
    } else if (KC) {
        const bool k0ok = krem > 0, k1ok = krem > 1;
        const size_t step = (size_t)8 * ld;
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            const bool rok = 8 * q < rrem;
            r[2 * q]     = (rok && k0ok) ? ptr[0] : 0.0f;
            r[2 * q + 1] = (rok && k1ok) ? ptr[1] : 0.0f;
            ptr += step;
        }
    } else {
        const bool r0ok = rrem > 0, r1ok = rrem > 32;
        const size_t step = (size_t)8 * ld;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const bool k0ok = 8 * j < krem, k1ok = 8 * j + 1 < krem;
            r[4 * j]     = (r0ok && k0ok) ? ptr[0] : 0.0f;
            r[4 * j + 1] = (r0ok && k1ok) ? ptr[ld] : 0.0f;
            r[4 * j + 2] = (r1ok && k0ok) ? ptr[32] : 0.0f;
            r[4 * j + 3] = (r1ok && k1ok) ? ptr[ld + 32] : 0.0f;
            ptr += step;
        }
    }
}

// s -> word (ib, kb) of the stage (tf32: word kb; bf16: word kb/2).
template <int PREC, bool KC>
__device__ __forceinline__ void tc_store(unsigned* __restrict__ s, const float (&r)[16]) {
    if (PREC == PREC_TF32 && KC) {
#pragma unroll
        for (int q = 0; q < 16; ++q) s[4 * q * TC_LDS_TF32] = tc_to_tf32(r[q]);
    } else if (PREC == PREC_TF32) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            s[4 * j] = tc_to_tf32(r[2 * j]);
            s[32 * TC_LDS_TF32 + 4 * j] = tc_to_tf32(r[2 * j + 1]);
        }
    } else if (KC) {
#pragma unroll
        for (int q = 0; q < 8; ++q) s[8 * q * TC_LDS_BF16] = tc_to_bf16x2(r[2 * q], r[2 * q + 1]);
    } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            s[4 * j] = tc_to_bf16x2(r[4 * j], r[4 * j + 1]);
            s[32 * TC_LDS_BF16 + 4 * j] = tc_to_bf16x2(r[4 * j + 2], r[4 * j + 3]);
        }
    }
}

// One BK slice of MMAs for this warp's 32x32 sub-tile.
template <int PREC>
__device__ __forceinline__ void tc_compute(const unsigned* __restrict__ As, const unsigned* __restrict__ Bs,
                                           float (&acc)[2][4][4], int wm, int wn, int lane) {
    const int g = lane >> 2, tig = lane & 3;
    constexpr int LDS = PREC == PREC_TF32 ? TC_LDS_TF32 : TC_LDS_BF16;
    constexpr int KSTEPS = PREC == PREC_TF32 ? TC_BK / 8 : TC_BK / 16;  // 8 words per step either way
#pragma unroll
    for (int ks = 0; ks < KSTEPS; ++ks) {
        const int c = ks * 8 + tig;
        unsigned af[2][4], bf[4][2];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            const int r = wm * 32 + mt * 16 + g;
            af[mt][0] = As[r * LDS + c];
            af[mt][1] = As[(r + 8) * LDS + c];
            af[mt][2] = As[r * LDS + c + 4];
            af[mt][3] = As[(r + 8) * LDS + c + 4];
        }
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
            const int n = wn * 32 + nt * 8 + g;
            bf[nt][0] = Bs[n * LDS + c];
            bf[nt][1] = Bs[n * LDS + c + 4];
        }
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                if (PREC == PREC_TF32) tc_mma_tf32(acc[mt][nt], af[mt], bf[nt]);
                else                   tc_mma_bf16(acc[mt][nt], af[mt], bf[nt]);
            }
    }
}

// acc = A(m0.., k) * B(n0.., k)^T over k in [kbeg, kend)
template <int PREC, bool AKC, bool BKC>
__device__ __forceinline__ void tc_mainloop(const float* __restrict__ A, int lda, int arows,
                                            const float* __restrict__ B, int ldb, int brows,
                                            int m0, int n0, int kbeg, int kend,
                                            float (&acc)[2][4][4]) {
    constexpr int LDS = PREC == PREC_TF32 ? TC_LDS_TF32 : TC_LDS_BF16;
    constexpr int STAGE = TC_BM * LDS;  // words per operand stage (TC_BM == TC_BN)
    __shared__ __align__(16) unsigned As[2 * STAGE];
    __shared__ __align__(16) unsigned Bs[2 * STAGE];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[mt][nt][j] = 0.0f;

    const int ntiles = kend > kbeg ? (kend - kbeg + TC_BK - 1) / TC_BK : 0;
    if (ntiles == 0) return;

    int aib, akb, bib, bkb;
    tc_base<PREC, AKC>(tid, aib, akb);
    tc_base<PREC, BKC>(tid, bib, bkb);
    const float* pa = AKC ? A + (size_t)(m0 + aib) * lda + (kbeg + akb) : A + (size_t)(kbeg + akb) * lda + (m0 + aib);
    const float* pb = BKC ? B + (size_t)(n0 + bib) * ldb + (kbeg + bkb) : B + (size_t)(kbeg + bkb) * ldb + (n0 + bib);
    const size_t astep = AKC ? (size_t)TC_BK : (size_t)TC_BK * lda;
    const size_t bstep = BKC ? (size_t)TC_BK : (size_t)TC_BK * ldb;
    const int arrem = arows - m0 - aib, brrem = brows - n0 - bib;
    int akrem = kend - kbeg - akb, bkrem = kend - kbeg - bkb;
    constexpr int WPR = PREC == PREC_TF32 ? 1 : 2;  // k elements per smem word
    const int sa = aib * LDS + akb / WPR, sb = bib * LDS + bkb / WPR;

    float ra[16], rb[16];
    tc_load<PREC, AKC>(pa, lda, arrem, akrem, ra);
    tc_load<PREC, BKC>(pb, ldb, brrem, bkrem, rb);
    tc_store<PREC, AKC>(As + sa, ra);
    tc_store<PREC, BKC>(Bs + sb, rb);
    __syncthreads();

    for (int t = 0; t < ntiles; ++t) {
        const int cur = (t & 1) * STAGE;
        const bool more = t + 1 < ntiles;
        if (more) {
            pa += astep; pb += bstep;
            akrem -= TC_BK; bkrem -= TC_BK;
            tc_load<PREC, AKC>(pa, lda, arrem, akrem, ra);
            tc_load<PREC, BKC>(pb, ldb, brrem, bkrem, rb);
        }
        tc_compute<PREC>(As + cur, Bs + cur, acc, wm, wn, lane);
        if (more) {
            const int nxt = STAGE - cur;
            tc_store<PREC, AKC>(As + nxt + sa, ra);
            tc_store<PREC, BKC>(Bs + nxt + sb, rb);
        }
        __syncthreads();
    }
}

__device__ __forceinline__ float tc_act(float z, int act) {
    if (act == 1) return fmaxf(z, 0.0f);
    if (act == 2) return 1.0f / (1.0f + expf(-z));
    return z;
}

// Epilogue modes
#define EPI_FWD 0  // C = act(acc + bias)
#define EPI_DX 1   // C = mask > 0 ? acc : 0
#define EPI_STORE 2  // C = acc (split-K partials: dw, fwd_partial, dx_partial)

// Writes the accumulators of this thread: element (mt, nt, j) sits at
// row = m0 + wm*32 + mt*16 + g + (j >= 2 ? 8 : 0), col = n0 + wn*32 + nt*8 + 2*tig + (j & 1).
template <int MODE>
__device__ __forceinline__ void tc_epilogue(float* __restrict__ C, int rows, int cols, int m0, int n0,
                                            const float (&acc)[2][4][4], const float* __restrict__ bias,
                                            const float* __restrict__ mask, int act) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1, g = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = m0 + wm * 32 + mt * 16 + g + h * 8;
            if (row >= rows) continue;
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                const int col = n0 + wn * 32 + nt * 8 + 2 * tig;
                if (col >= cols) continue;
                const bool two = col + 1 < cols;
                float v0 = acc[mt][nt][2 * h], v1 = acc[mt][nt][2 * h + 1];
                float* p = C + (size_t)row * cols + col;
                if (MODE == EPI_FWD) {
                    if (bias != nullptr) {
                        v0 += bias[col];
                        if (two) v1 += bias[col + 1];
                    }
                    v0 = tc_act(v0, act);
                    v1 = tc_act(v1, act);
                } else if (MODE == EPI_DX) {
                    if (mask != nullptr) {
                        const float* mp = mask + (size_t)row * cols + col;
                        if (!(mp[0] > 0.0f)) v0 = 0.0f;
                        if (two && !(mp[1] > 0.0f)) v1 = 0.0f;
                    }
                }
                // float2 needs an 8-byte aligned C (C may be a layer's slice
                // of the flat gradient buffer, only 4-byte aligned).
                if ((cols & 1) == 0 && (reinterpret_cast<unsigned long long>(C) & 7) == 0 && two) {
                    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
                } else {
                    p[0] = v0;
                    if (two) p[1] = v1;
                }
            }
        }
}

template <int PREC>
__device__ __forceinline__ void tc_fwd(const float* __restrict__ X, const float* __restrict__ W,
                                       const float* __restrict__ bias, float* __restrict__ Y,
                                       int M, int N, int K, int act) {
    const int m0 = blockIdx.y * TC_BM, n0 = blockIdx.x * TC_BN;
    float acc[2][4][4];
    // A(row=m, k) = X[m*K + k]; B(row=n, k) = W[k*N + n]
    tc_mainloop<PREC, true, false>(X, K, M, W, N, N, m0, n0, 0, K, acc);
    tc_epilogue<EPI_FWD>(Y, M, N, m0, n0, acc, bias, nullptr, act);
}

template <int PREC>
__device__ __forceinline__ void tc_dx(const float* __restrict__ dY, const float* __restrict__ W,
                                      const float* __restrict__ mask, float* __restrict__ dX,
                                      int M, int N, int K) {
    const int m0 = blockIdx.y * TC_BM, n0 = blockIdx.x * TC_BN;  // n0 indexes K
    float acc[2][4][4];
    // A(row=m, r) = dY[m*N + r]; B(row=k, r) = W[k*N + r]; reduction over N
    tc_mainloop<PREC, true, true>(dY, N, M, W, N, K, m0, n0, 0, N, acc);
    tc_epilogue<EPI_DX>(dX, M, K, m0, n0, acc, nullptr, mask, 0);
}

// Reduction range [r0, r1) of split s: r0 = s*per, r1 = min(total, r0 + per),
// clamped so that a split past the end is empty (r0 == r1 == total).
__device__ __forceinline__ void tc_split_range(int s, int per, int total, int& r0, int& r1) {
    const long long r0l = (long long)s * per;
    r0 = r0l < total ? (int)r0l : total;
    r1 = (long long)r0 + per < total ? r0 + per : total;
}

template <int PREC>
__device__ __forceinline__ void tc_dw(const float* __restrict__ X, const float* __restrict__ dY,
                                      float* __restrict__ partial, int M, int N, int K, int rows_per_split) {
    const int m0 = blockIdx.y * TC_BM, n0 = blockIdx.x * TC_BN;  // m0 indexes K
    const int s = blockIdx.z;
    int r0, r1;
    tc_split_range(s, rows_per_split, M, r0, r1);
    float acc[2][4][4];
    // A(row=k, r) = X[r*K + k]; B(row=n, r) = dY[r*N + n]; reduction over batch rows
    tc_mainloop<PREC, false, false>(X, K, K, dY, N, N, m0, n0, r0, r1, acc);
    tc_epilogue<EPI_STORE>(partial + (size_t)s * K * N, K, N, m0, n0, acc, nullptr, nullptr, 0);
}

// Split-K forward: partial[s][M][N] = X[:, k0:k1] . W[k0:k1, :] (s = blockIdx.z).
template <int PREC>
__device__ __forceinline__ void tc_fwd_partial(const float* __restrict__ X, const float* __restrict__ W,
                                               float* __restrict__ partial, int M, int N, int K,
                                               int k_per_split) {
    const int m0 = blockIdx.y * TC_BM, n0 = blockIdx.x * TC_BN;
    const int s = blockIdx.z;
    int k0, k1;
    tc_split_range(s, k_per_split, K, k0, k1);
    float acc[2][4][4];
    // as tc_fwd, over k in [k0, k1)
    tc_mainloop<PREC, true, false>(X, K, M, W, N, N, m0, n0, k0, k1, acc);
    tc_epilogue<EPI_STORE>(partial + (size_t)s * M * N, M, N, m0, n0, acc, nullptr, nullptr, 0);
}

// Split-K input gradient: partial[s][M][K] = dY[:, n0:n1] . W[:, n0:n1]^T (s = blockIdx.z).
template <int PREC>
__device__ __forceinline__ void tc_dx_partial(const float* __restrict__ dY, const float* __restrict__ W,
                                              float* __restrict__ partial, int M, int N, int K,
                                              int n_per_split) {
    const int m0 = blockIdx.y * TC_BM, c0 = blockIdx.x * TC_BN;  // c0 indexes K
    const int s = blockIdx.z;
    int r0, r1;
    tc_split_range(s, n_per_split, N, r0, r1);
    float acc[2][4][4];
    // as tc_dx, over r in [r0, r1)
    tc_mainloop<PREC, true, true>(dY, N, M, W, N, K, m0, c0, r0, r1, acc);
    tc_epilogue<EPI_STORE>(partial + (size_t)s * M * K, M, K, m0, c0, acc, nullptr, nullptr, 0);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_fwd_tf32(const float* __restrict__ X, const float* __restrict__ W, const float* __restrict__ bias,
              float* __restrict__ Y, int M, int N, int K, int act) {
    tc_fwd<PREC_TF32>(X, W, bias, Y, M, N, K, act);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_dx_tf32(const float* __restrict__ dY, const float* __restrict__ W, const float* __restrict__ mask,
             float* __restrict__ dX, int M, int N, int K) {
    tc_dx<PREC_TF32>(dY, W, mask, dX, M, N, K);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_dw_tf32(const float* __restrict__ X, const float* __restrict__ dY, float* __restrict__ partial,
             int M, int N, int K, int rows_per_split) {
    tc_dw<PREC_TF32>(X, dY, partial, M, N, K, rows_per_split);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_fwd_bf16(const float* __restrict__ X, const float* __restrict__ W, const float* __restrict__ bias,
              float* __restrict__ Y, int M, int N, int K, int act) {
    tc_fwd<PREC_BF16>(X, W, bias, Y, M, N, K, act);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_dx_bf16(const float* __restrict__ dY, const float* __restrict__ W, const float* __restrict__ mask,
             float* __restrict__ dX, int M, int N, int K) {
    tc_dx<PREC_BF16>(dY, W, mask, dX, M, N, K);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_dw_bf16(const float* __restrict__ X, const float* __restrict__ dY, float* __restrict__ partial,
             int M, int N, int K, int rows_per_split) {
    tc_dw<PREC_BF16>(X, dY, partial, M, N, K, rows_per_split);
}

// partial[s][M][N] = X[:, k0:k1] . W[k0:k1, :], k0 = s*k_per_split, k1 = min(K, k0 + k_per_split)
extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_fwd_partial_tf32(const float* __restrict__ X, const float* __restrict__ W, float* __restrict__ partial,
                      int M, int N, int K, int k_per_split) {
    tc_fwd_partial<PREC_TF32>(X, W, partial, M, N, K, k_per_split);
}

// partial[s][M][K] = dY[:, n0:n1] . W[:, n0:n1]^T, n0 = s*n_per_split, n1 = min(N, n0 + n_per_split)
extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_dx_partial_tf32(const float* __restrict__ dY, const float* __restrict__ W, float* __restrict__ partial,
                     int M, int N, int K, int n_per_split) {
    tc_dx_partial<PREC_TF32>(dY, W, partial, M, N, K, n_per_split);
}

// partial[s][M][N] = X[:, k0:k1] . W[k0:k1, :], k0 = s*k_per_split, k1 = min(K, k0 + k_per_split)
extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_fwd_partial_bf16(const float* __restrict__ X, const float* __restrict__ W, float* __restrict__ partial,
                      int M, int N, int K, int k_per_split) {
    tc_fwd_partial<PREC_BF16>(X, W, partial, M, N, K, k_per_split);
}

// partial[s][M][K] = dY[:, n0:n1] . W[:, n0:n1]^T, n0 = s*n_per_split, n1 = min(N, n0 + n_per_split)
extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
gemm_dx_partial_bf16(const float* __restrict__ dY, const float* __restrict__ W, float* __restrict__ partial,
                     int M, int N, int K, int n_per_split) {
    tc_dx_partial<PREC_BF16>(dY, W, partial, M, N, K, n_per_split);
}
