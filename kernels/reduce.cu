// Fixed-order reductions: split-K finishes (dW, forward, input gradient) and
// the bias gradient.
//
// Self-contained: no #include. NVRTC options: --std=c++17 -arch=compute_XX --fmad=true.
// No atomics: every sum runs in an order fixed by the launch configuration,
// so two runs with the same configuration give identical bits.

// Σ_{s=0..splits-1} partial[s*count + i], in split order (fp32): the one
// summation order of every split-K finish below.
__device__ __forceinline__ float split_sum(const float* __restrict__ partial, size_t count, int splits,
                                           size_t i) {
    float acc = partial[i];
    for (int s = 1; s < splits; ++s) acc += partial[(size_t)s * count + i];
    return acc;
}

// The same per component for 4 consecutive elements (p4 = partial as float4,
// n4 = count / 4 float4s per split).
__device__ __forceinline__ float4 split_sum4(const float4* __restrict__ p4, size_t n4, int splits, size_t i) {
    float4 acc = p4[i];
    for (int s = 1; s < splits; ++s) {
        const float4 v = p4[(size_t)s * n4 + i];
        acc.x += v.x; acc.y += v.y; acc.z += v.z; acc.w += v.w;
    }
    return acc;
}

__device__ __forceinline__ bool aligned16(const void* p) {
    return (reinterpret_cast<unsigned long long>(p) & 15) == 0;
}

// out[i] = partial[0*count + i] + partial[1*count + i] + ... (s = 0..splits-1, in order, fp32).
// Any grid works (grid-stride). Suggested: blockDim = 256,
// grid = min(ceil(count/4/256) (or ceil(count/256) when count % 4 != 0), 4 * SMs), at least 1.
// partial and out must not overlap (when splits == 1 simply skip this kernel).
// Memory-bound: every kernel here is designed for full occupancy, 8 blocks
// of 256 threads per SM (≤ 32 registers; tools/check_kernels.py holds them to it).
extern "C" __global__ void __launch_bounds__(256, 8)
reduce_splits(const float* __restrict__ partial, float* __restrict__ out, int splits, int count) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    // out may be a layer's slice of the flat gradient buffer (only 4-byte aligned).
    if ((count & 3) == 0 && aligned16(partial) && aligned16(out)) {
        // 16-byte path: count % 4 == 0 keeps every split's slice 16-byte aligned.
        const size_t n4 = (size_t)count >> 2;
        const float4* p4 = reinterpret_cast<const float4*>(partial);
        float4* o4 = reinterpret_cast<float4*>(out);
        for (size_t i = tid; i < n4; i += stride) o4[i] = split_sum4(p4, n4, splits, i);
    } else {
        for (size_t i = tid; i < (size_t)count; i += stride) out[i] = split_sum(partial, count, splits, i);
    }
}

// Gradient accumulation: acc[i] += add[i] for i < count (fp32, one rounding
// each). The accumulated train step writes each later micro-batch's dW / db
// into a scratch buffer and adds it into the step's gradient with this, in
// micro-batch order. Grid-stride like reduce_splits (same suggested grid);
// acc and add must not overlap.
extern "C" __global__ void __launch_bounds__(256, 8)
accumulate_add(float* __restrict__ acc, const float* __restrict__ add, int count) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if ((count & 3) == 0 && aligned16(acc) && aligned16(add)) {
        const size_t n4 = (size_t)count >> 2;
        float4* a4 = reinterpret_cast<float4*>(acc);
        const float4* b4 = reinterpret_cast<const float4*>(add);
        for (size_t i = tid; i < n4; i += stride) {
            float4 a = a4[i];
            const float4 b = b4[i];
            a.x += b.x; a.y += b.y; a.z += b.z; a.w += b.w;
            a4[i] = a;
        }
    } else {
        for (size_t i = tid; i < (size_t)count; i += stride) acc[i] += add[i];
    }
}

// The fused GEMM epilogue's activations (kernels/gemm_*.cu): 0 id, 1 relu, 2 sigmoid.
__device__ __forceinline__ float rd_act(float z, int act) {
    if (act == 1) return fmaxf(z, 0.0f);
    if (act == 2) return 1.0f / (1.0f + expf(-z));
    return z;
}

// Split-K forward finish: Y[r][c] = act(Σ_s partial[s][r][c] + bias[c]) for
// Y [M,N], partial = splits·M·N floats from gemm_fwd_partial_*; bias may be
// null. Splits summed in order, then the bias added, then act: the fused
// epilogue's formula. Grid-stride like reduce_splits (same suggested grid,
// count = M·N). Y may be only 4-byte aligned; partial and Y must not overlap.
extern "C" __global__ void __launch_bounds__(256, 8)
splitk_bias_act(const float* __restrict__ partial, const float* __restrict__ bias, float* __restrict__ Y,
                int splits, int M, int N, int act) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t count = (size_t)M * N;
    if ((N & 3) == 0 && aligned16(partial) && aligned16(Y)) {
        // N % 4 == 0: the 4 elements of a float4 share one row (columns c..c+3).
        const size_t n4 = count >> 2;
        const float4* p4 = reinterpret_cast<const float4*>(partial);
        float4* y4 = reinterpret_cast<float4*>(Y);
        for (size_t i = tid; i < n4; i += stride) {
            float4 v = split_sum4(p4, n4, splits, i);
            if (bias != nullptr) {
                const int c = (int)((4 * i) % (size_t)N);
                v.x += bias[c]; v.y += bias[c + 1]; v.z += bias[c + 2]; v.w += bias[c + 3];
            }
            v.x = rd_act(v.x, act); v.y = rd_act(v.y, act); v.z = rd_act(v.z, act); v.w = rd_act(v.w, act);
            y4[i] = v;
        }
    } else {
        for (size_t i = tid; i < count; i += stride) {
            float v = split_sum(partial, count, splits, i);
            if (bias != nullptr) v += bias[i % (size_t)N];
            Y[i] = rd_act(v, act);
        }
    }
}

// Split-K input-gradient finish: dX[i] = mask[i] > 0 ? Σ_s partial[s][i] : 0
// over count = M·K elements, partial = splits·count floats from
// gemm_dx_partial_*; mask may be null (no masking). Same grid as
// reduce_splits. dX and mask may be only 4-byte aligned; partial and dX
// must not overlap.
extern "C" __global__ void __launch_bounds__(256, 8)
splitk_mask(const float* __restrict__ partial, const float* __restrict__ mask, float* __restrict__ dX,
            int splits, int count) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if ((count & 3) == 0 && aligned16(partial) && aligned16(dX) && aligned16(mask)) {
        const size_t n4 = (size_t)count >> 2;
        const float4* p4 = reinterpret_cast<const float4*>(partial);
        float4* o4 = reinterpret_cast<float4*>(dX);
        for (size_t i = tid; i < n4; i += stride) {
            float4 v = split_sum4(p4, n4, splits, i);
            if (mask != nullptr) {
                const float4 k = reinterpret_cast<const float4*>(mask)[i];
                if (!(k.x > 0.0f)) v.x = 0.0f;
                if (!(k.y > 0.0f)) v.y = 0.0f;
                if (!(k.z > 0.0f)) v.z = 0.0f;
                if (!(k.w > 0.0f)) v.w = 0.0f;
            }
            o4[i] = v;
        }
    } else {
        for (size_t i = tid; i < (size_t)count; i += stride) {
            const float v = split_sum(partial, count, splits, i);
            dX[i] = (mask == nullptr || mask[i] > 0.0f) ? v : 0.0f;
        }
    }
}

// Per-split column sums of dY [M,N]: partial[s][n] = sum_{r in split s} dY[r][n],
// split s = blockIdx.y covers rows [s*rows_per_split, min(M, (s+1)*rows_per_split)).
// Launch: blockDim = (32, 8, 1) exactly, grid = (ceil(N/32), splits, 1).
// Order: thread (tx, ty) sums rows r0+ty, r0+ty+8, ... in increasing order (fp32);
// then the 8 row-group sums are added in order ty = 0..7. Then reduce_splits
// (count = N) finishes into db[N].
extern "C" __global__ void __launch_bounds__(256, 8)
bias_grad(const float* __restrict__ dY, float* __restrict__ partial, int M, int N, int rows_per_split) {
    __shared__ float red[8][33];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int col = blockIdx.x * 32 + tx;
    const int s = blockIdx.y;
    const long long r0l = (long long)s * rows_per_split;
    const int r0 = r0l < M ? (int)r0l : M;
    const int r1 = (long long)r0 + rows_per_split < M ? r0 + rows_per_split : M;
    float acc = 0.0f;
    if (col < N) {
        int r = r0 + ty;
        // 4 independent loads in flight, summed in row order
        for (; r + 24 < r1; r += 32) {
            const float a = dY[(size_t)r * N + col];
            const float b = dY[(size_t)(r + 8) * N + col];
            const float c = dY[(size_t)(r + 16) * N + col];
            const float d = dY[(size_t)(r + 24) * N + col];
            acc += a; acc += b; acc += c; acc += d;
        }
        for (; r < r1; r += 8) acc += dY[(size_t)r * N + col];
    }
    red[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && col < N) {
        float sum = red[0][tx];
#pragma unroll
        for (int j = 1; j < 8; ++j) sum += red[j][tx];
        partial[(size_t)s * N + col] = sum;
    }
}
