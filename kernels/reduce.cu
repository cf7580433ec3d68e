// Fixed-order reductions: split-K finish and bias gradient.
//
// Self-contained: no #include. NVRTC options: --std=c++17 -arch=compute_XX --fmad=true.
// No atomics: every sum runs in an order fixed by the launch configuration,
// so two runs with the same configuration give identical bits.

// out[i] = partial[0*count + i] + partial[1*count + i] + ... (s = 0..splits-1, in order, fp32).
// Any grid works (grid-stride). Suggested: blockDim = 256,
// grid = min(ceil(count/4/256) (or ceil(count/256) when count % 4 != 0), 4 * SMs), at least 1.
// partial and out must not overlap (when splits == 1 simply skip this kernel).
extern "C" __global__ void __launch_bounds__(256)
reduce_splits(const float* __restrict__ partial, float* __restrict__ out, int splits, int count) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    // out may be a layer's slice of the flat gradient buffer (only 4-byte aligned).
    if ((count & 3) == 0 &&
        ((reinterpret_cast<unsigned long long>(partial) | reinterpret_cast<unsigned long long>(out)) & 15) == 0) {
        // 16-byte path: count % 4 == 0 keeps every split's slice 16-byte aligned.
        const size_t n4 = (size_t)count >> 2;
        const float4* p4 = reinterpret_cast<const float4*>(partial);
        float4* o4 = reinterpret_cast<float4*>(out);
        for (size_t i = tid; i < n4; i += stride) {
            float4 acc = p4[i];
            for (int s = 1; s < splits; ++s) {
                const float4 v = p4[(size_t)s * n4 + i];
                acc.x += v.x; acc.y += v.y; acc.z += v.z; acc.w += v.w;
            }
            o4[i] = acc;
        }
    } else {
        for (size_t i = tid; i < (size_t)count; i += stride) {
            float acc = partial[i];
            for (int s = 1; s < splits; ++s) acc += partial[(size_t)s * count + i];
            out[i] = acc;
        }
    }
}

// Per-split column sums of dY [M,N]: partial[s][n] = sum_{r in split s} dY[r][n],
// split s = blockIdx.y covers rows [s*rows_per_split, min(M, (s+1)*rows_per_split)).
// Launch: blockDim = (32, 8, 1) exactly, grid = (ceil(N/32), splits, 1).
// Order: thread (tx, ty) sums rows r0+ty, r0+ty+8, ... in increasing order (fp32);
// then the 8 row-group sums are added in order ty = 0..7. Then reduce_splits
// (count = N) finishes into db[N].
extern "C" __global__ void __launch_bounds__(256)
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
