// Dense-layer GEMMs in plain FP32 (FFMA), the exact-precision path.
//
// Self-contained: no #include. Compiled at run time by NVRTC with
//   --std=c++17 -arch=compute_80|compute_90 --fmad=true
//
// Layouts (row-major, fp32): X [M,K], W [K,N], bias [N], Y/dY [M,N], dX [M,K].
// Every kernel computes one 64x64 output tile per block with 256 threads
// (16x16 threads, each a 4x4 register micro-tile), BK = 16, two shared-memory
// stages filled through registers (the next tile's global loads are in flight
// while the current tile is multiplied). Each output element is summed by one
// thread in a fixed k order: results are deterministic.
//
// Launch (see kernels/README.md): blockDim = (256,1,1), no dynamic smem,
//   gemm_fwd_f32        : grid = (ceil(N/64), ceil(M/64), 1)
//   gemm_dx_f32         : grid = (ceil(K/64), ceil(M/64), 1)
//   gemm_dw_f32         : grid = (ceil(N/64), ceil(K/64), splits)
//   gemm_fwd_partial_f32: grid = (ceil(N/64), ceil(M/64), splits)   split-K over K
//   gemm_dx_partial_f32 : grid = (ceil(K/64), ceil(M/64), splits)   split-K over N
// The partial products are finished by splitk_bias_act / splitk_mask
// (fwd / dx) and reduce_splits (dw) in kernels/reduce.cu.

#define F32_BM 64
#define F32_BN 64
#define F32_BK 16
#define F32_THREADS 256
// Designed for 4 blocks per SM (32 warps), which caps registers at 64;
// CI (tools/check_kernels.py) fails if ptxas needs more.
#define F32_MIN_BLOCKS 4
#define F32_LDS (F32_BM + 4)  // smem row stride (floats); keeps float4 reads aligned

// Operand tile loader. An operand is viewed as rows x reduction:
//   KC = true : element (row, k) at p[row*ld + k]   (reduction index contiguous)
//   KC = false: element (row, k) at p[k*ld + row]   (row index contiguous)
// The tile is 64 rows x 16 k, 4 elements per thread; the thread map follows
// the contiguous index so a warp's loads are coalesced:
//   KC : ib = tid>>4, kb = tid&15;  r[q] = (ib + 16q, kb)
//   !KC: ib = tid&63, kb = tid>>6;  r[q] = (ib, kb + 4q)
// ptr -> element (ib, kb) of the current tile; rrem / krem = rows / k left
// from (ib, kb). Out-of-range elements read as 0.
template <bool KC>
__device__ __forceinline__ void f32_base(int tid, int& ib, int& kb) {
    if (KC) { ib = tid >> 4; kb = tid & 15; }
    else    { ib = tid & 63; kb = tid >> 6; }
}

template <bool KC>
__device__ __forceinline__ void f32_load(const float* __restrict__ ptr, int ld, int rrem, int krem,
                                         float (&r)[4]) {
    const size_t step = KC ? (size_t)16 * ld : (size_t)4 * ld;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const bool ok = KC ? (krem > 0 && 16 * q < rrem) : (rrem > 0 && 4 * q < krem);
        r[q] = ok ? ptr[0] : 0.0f;
        ptr += step;
    }
}

// s -> element [kb][ib] of the stage
template <bool KC>
__device__ __forceinline__ void f32_store(float* __restrict__ s, const float (&r)[4]) {
#pragma unroll
    for (int q = 0; q < 4; ++q) s[KC ? 16 * q : 4 * q * F32_LDS] = r[q];
}

// acc[a][b] = sum_{k in [kbeg,kend)} A(m0+ty*4+a, k) * B(n0+tx*4+b, k)
template <bool AKC, bool BKC>
__device__ __forceinline__ void f32_mainloop(const float* __restrict__ A, int lda, int arows,
                                             const float* __restrict__ B, int ldb, int brows,
                                             int m0, int n0, int kbeg, int kend,
                                             float (&acc)[4][4]) {
    __shared__ __align__(16) float As[2][F32_BK][F32_LDS];
    __shared__ __align__(16) float Bs[2][F32_BK][F32_LDS];

    const int tid = threadIdx.x;
    const int ty = tid >> 4, tx = tid & 15;
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) acc[a][b] = 0.0f;

    const int ntiles = kend > kbeg ? (kend - kbeg + F32_BK - 1) / F32_BK : 0;
    if (ntiles == 0) return;

    int aib, akb, bib, bkb;
    f32_base<AKC>(tid, aib, akb);
    f32_base<BKC>(tid, bib, bkb);
    const float* pa = AKC ? A + (size_t)(m0 + aib) * lda + (kbeg + akb) : A + (size_t)(kbeg + akb) * lda + (m0 + aib);
    const float* pb = BKC ? B + (size_t)(n0 + bib) * ldb + (kbeg + bkb) : B + (size_t)(kbeg + bkb) * ldb + (n0 + bib);
    const size_t astep = AKC ? (size_t)F32_BK : (size_t)F32_BK * lda;
    const size_t bstep = BKC ? (size_t)F32_BK : (size_t)F32_BK * ldb;
    const int arrem = arows - m0 - aib, brrem = brows - n0 - bib;
    int akrem = kend - kbeg - akb, bkrem = kend - kbeg - bkb;
    const int sa = akb * F32_LDS + aib, sb = bkb * F32_LDS + bib;
    float* as = &As[0][0][0];
    float* bs = &Bs[0][0][0];
    constexpr int STAGE = F32_BK * F32_LDS;

    float ra[4], rb[4];
    f32_load<AKC>(pa, lda, arrem, akrem, ra);
    f32_load<BKC>(pb, ldb, brrem, bkrem, rb);
    f32_store<AKC>(as + sa, ra);
    f32_store<BKC>(bs + sb, rb);
    __syncthreads();

    for (int t = 0; t < ntiles; ++t) {
        const int cur = t & 1;
        const bool more = t + 1 < ntiles;
        if (more) {
            pa += astep; pb += bstep;
            akrem -= F32_BK; bkrem -= F32_BK;
            f32_load<AKC>(pa, lda, arrem, akrem, ra);
            f32_load<BKC>(pb, ldb, brrem, bkrem, rb);
        }
#pragma unroll
        for (int kk = 0; kk < F32_BK; ++kk) {
            const float4 a4 = *reinterpret_cast<const float4*>(&As[cur][kk][ty * 4]);
            const float4 b4 = *reinterpret_cast<const float4*>(&Bs[cur][kk][tx * 4]);
            const float av[4] = {a4.x, a4.y, a4.z, a4.w};
            const float bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
            for (int a = 0; a < 4; ++a)
#pragma unroll
                for (int b = 0; b < 4; ++b) acc[a][b] = fmaf(av[a], bv[b], acc[a][b]);
        }
        if (more) {
            const int nxt = (cur ^ 1) * STAGE;
            f32_store<AKC>(as + nxt + sa, ra);
            f32_store<BKC>(bs + nxt + sb, rb);
        }
        __syncthreads();
    }
}

__device__ __forceinline__ float f32_act(float z, int act) {
    if (act == 1) return fmaxf(z, 0.0f);
    if (act == 2) return 1.0f / (1.0f + expf(-z));
    return z;
}

// Stores two horizontally adjacent outputs C[row][col], C[row][col+1] of a
// [rows, cols] matrix (col+1 may be out of range); float2 when legal. col is
// even, so float2 is legal when cols is even and C is 8-byte aligned (C may
// be a layer's slice of the flat gradient buffer, only 4-byte aligned).
__device__ __forceinline__ void f32_store_pair(float* __restrict__ C, int cols, int row, int col,
                                               float v0, float v1) {
    float* p = C + (size_t)row * cols + col;
    if ((cols & 1) == 0 && (reinterpret_cast<unsigned long long>(C) & 7) == 0 && col + 1 < cols) {
        *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
    } else {
        if (col < cols) p[0] = v0;
        if (col + 1 < cols) p[1] = v1;
    }
}

// Reduction range [r0, r1) of split s: r0 = s*per, r1 = min(total, r0 + per),
// clamped so that a split past the end is empty (r0 == r1 == total).
__device__ __forceinline__ void f32_split_range(int s, int per, int total, int& r0, int& r1) {
    const long long r0l = (long long)s * per;
    r0 = r0l < total ? (int)r0l : total;
    r1 = (long long)r0 + per < total ? r0 + per : total;
}

// Writes this thread's accumulators unchanged into C [rows, cols] (a split-K
// partial; an empty split's zeros included).
__device__ __forceinline__ void f32_store_tile(float* __restrict__ C, int rows, int cols, int m0, int n0,
                                               const float (&acc)[4][4]) {
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int row = m0 + ty * 4 + a;
        if (row >= rows) continue;
#pragma unroll
        for (int b = 0; b < 4; b += 2) {
            const int col = n0 + tx * 4 + b;
            if (col >= cols) continue;
            f32_store_pair(C, cols, row, col, acc[a][b], acc[a][b + 1]);
        }
    }
}

// Y[M,N] = act(X[M,K] . W[K,N] + bias)
extern "C" __global__ void __launch_bounds__(F32_THREADS, F32_MIN_BLOCKS)
gemm_fwd_f32(const float* __restrict__ X, const float* __restrict__ W,
             const float* __restrict__ bias, float* __restrict__ Y,
             int M, int N, int K, int act) {
    const int m0 = blockIdx.y * F32_BM, n0 = blockIdx.x * F32_BN;
    float acc[4][4];
    // A(row=m, k) = X[m*K + k]; B(row=n, k) = W[k*N + n]
    f32_mainloop<true, false>(X, K, M, W, N, N, m0, n0, 0, K, acc);
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int row = m0 + ty * 4 + a;
        if (row >= M) continue;
#pragma unroll
        for (int b = 0; b < 4; b += 2) {
            const int col = n0 + tx * 4 + b;
            if (col >= N) continue;
            float v0 = acc[a][b], v1 = acc[a][b + 1];
            if (bias != nullptr) {
                v0 += bias[col];
                if (col + 1 < N) v1 += bias[col + 1];
            }
            f32_store_pair(Y, N, row, col, f32_act(v0, act), f32_act(v1, act));
        }
    }
}

// dX[M,K] = dY[M,N] . W^T, then dX = mask > 0 ? dX : 0 when mask != nullptr.
extern "C" __global__ void __launch_bounds__(F32_THREADS, F32_MIN_BLOCKS)
gemm_dx_f32(const float* __restrict__ dY, const float* __restrict__ W,
            const float* __restrict__ mask, float* __restrict__ dX,
            int M, int N, int K) {
    const int m0 = blockIdx.y * F32_BM, n0 = blockIdx.x * F32_BN;  // n0 indexes K
    float acc[4][4];
    // A(row=m, r) = dY[m*N + r]; B(row=k, r) = W[k*N + r]; reduction r over N
    f32_mainloop<true, true>(dY, N, M, W, N, K, m0, n0, 0, N, acc);
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int row = m0 + ty * 4 + a;
        if (row >= M) continue;
#pragma unroll
        for (int b = 0; b < 4; b += 2) {
            const int col = n0 + tx * 4 + b;
            if (col >= K) continue;
            float v0 = acc[a][b], v1 = acc[a][b + 1];
            if (mask != nullptr) {
                const float* mp = mask + (size_t)row * K + col;
                if (!(mp[0] > 0.0f)) v0 = 0.0f;
                if (col + 1 < K && !(mp[1] > 0.0f)) v1 = 0.0f;
            }
            f32_store_pair(dX, K, row, col, v0, v1);
        }
    }
}

// partial[s][K][N] = X[r0:r1, :]^T . dY[r0:r1, :], s = blockIdx.z,
// r0 = s*rows_per_split, r1 = min(M, r0 + rows_per_split). Empty splits write zeros.
extern "C" __global__ void __launch_bounds__(F32_THREADS, F32_MIN_BLOCKS)
gemm_dw_f32(const float* __restrict__ X, const float* __restrict__ dY,
            float* __restrict__ partial, int M, int N, int K, int rows_per_split) {
    const int m0 = blockIdx.y * F32_BM, n0 = blockIdx.x * F32_BN;  // m0 indexes K
    const int s = blockIdx.z;
    int r0, r1;
    f32_split_range(s, rows_per_split, M, r0, r1);
    float acc[4][4];
    // A(row=k, r) = X[r*K + k]; B(row=n, r) = dY[r*N + n]; reduction r over rows
    f32_mainloop<false, false>(X, K, K, dY, N, N, m0, n0, r0, r1, acc);
    f32_store_tile(partial + (size_t)s * K * N, K, N, m0, n0, acc);
}

// Split-K forward: partial[s][M][N] = X[:, k0:k1] . W[k0:k1, :], s = blockIdx.z,
// k0 = s*k_per_split, k1 = min(K, k0 + k_per_split). Empty splits write zeros.
// Then splitk_bias_act(partial, bias, Y, splits, M, N, act).
extern "C" __global__ void __launch_bounds__(F32_THREADS, F32_MIN_BLOCKS)
gemm_fwd_partial_f32(const float* __restrict__ X, const float* __restrict__ W,
                     float* __restrict__ partial, int M, int N, int K, int k_per_split) {
    const int m0 = blockIdx.y * F32_BM, n0 = blockIdx.x * F32_BN;
    const int s = blockIdx.z;
    int k0, k1;
    f32_split_range(s, k_per_split, K, k0, k1);
    float acc[4][4];
    // as gemm_fwd_f32, over k in [k0, k1)
    f32_mainloop<true, false>(X, K, M, W, N, N, m0, n0, k0, k1, acc);
    f32_store_tile(partial + (size_t)s * M * N, M, N, m0, n0, acc);
}

// Split-K input gradient: partial[s][M][K] = dY[:, n0:n1] . W[:, n0:n1]^T,
// s = blockIdx.z, n0 = s*n_per_split, n1 = min(N, n0 + n_per_split). Empty
// splits write zeros. Then splitk_mask(partial, mask, dX, splits, M*K).
extern "C" __global__ void __launch_bounds__(F32_THREADS, F32_MIN_BLOCKS)
gemm_dx_partial_f32(const float* __restrict__ dY, const float* __restrict__ W,
                    float* __restrict__ partial, int M, int N, int K, int n_per_split) {
    const int m0 = blockIdx.y * F32_BM, c0 = blockIdx.x * F32_BN;  // c0 indexes K
    const int s = blockIdx.z;
    int r0, r1;
    f32_split_range(s, n_per_split, N, r0, r1);
    float acc[4][4];
    // as gemm_dx_f32, over r in [r0, r1)
    f32_mainloop<true, true>(dY, N, M, W, N, K, m0, c0, r0, r1, acc);
    f32_store_tile(partial + (size_t)s * M * K, M, K, m0, c0, acc);
}
