// Fused sigmoid + binary cross-entropy from logits, and the device-side loss sum.
//
// Self-contained: no #include. NVRTC options: --std=c++17 -arch=compute_XX --fmad=true.
// The elementwise arithmetic uses __fmul_rn/__fadd_rn/__fsub_rn where the CPU
// code (crates/core/src/cpu/loss.rs) would otherwise differ by an FMA
// contraction; expf/log1pf are CUDA's (a few ulp from Rust's exp/ln_1p).

#define LOSS_THREADS 256
// Memory-bound: designed for full occupancy, 8 blocks per SM (≤ 32 registers).
#define LOSS_MIN_BLOCKS 8

// Elementwise over count = M*N:
//   e      = exp(-|z|)
//   loss_i = (max(z,0) - z*t) + log1p(e)
//   r      = 1/(1+e); s = z >= 0 ? r : e*r     (sigmoid without overflow)
//   dZ_i   = (s - t) * grad_scale
// Block b writes loss_partial[b] = sum of its loss_i: each thread sums its
// elements in DOUBLE in grid-stride order, then a fixed-shape tree in double
// over the 256 threads; the block total is rounded to float once.
// Launch: blockDim = 256 exactly; grid = LOSS_BLOCKS = 1024 (fixed, so
// loss_partial has 1024 floats and the result bits do not depend on count).
// Any grid >= 1 is correct; a different grid changes the summation order.
// Z, T, dZ: 16-byte aligned bases. dZ may alias Z (each element is read before written).
extern "C" __global__ void __launch_bounds__(LOSS_THREADS, LOSS_MIN_BLOCKS)
bce_logits(const float* Z, const float* T, float* dZ, float* __restrict__ loss_partial,
           int count, float grad_scale) {
    __shared__ double red[LOSS_THREADS];
    const int tid = threadIdx.x;
    const size_t gid = (size_t)blockIdx.x * LOSS_THREADS + tid;
    const size_t stride = (size_t)gridDim.x * LOSS_THREADS;
    double acc = 0.0;

    auto one = [&](float z, float t, float& dz) {
        const float e = expf(-fabsf(z));
        const float l = __fadd_rn(__fsub_rn(fmaxf(z, 0.0f), __fmul_rn(z, t)), log1pf(e));
        acc += (double)l;
        const float r = __fdiv_rn(1.0f, __fadd_rn(1.0f, e));
        const float s = z >= 0.0f ? r : __fmul_rn(e, r);  // the CPU's e * r, one division
        dz = __fmul_rn(__fsub_rn(s, t), grad_scale);
    };

    const size_t n4 = (size_t)count >> 2;
    const float4* Z4 = reinterpret_cast<const float4*>(Z);
    const float4* T4 = reinterpret_cast<const float4*>(T);
    float4* D4 = reinterpret_cast<float4*>(dZ);
    for (size_t i = gid; i < n4; i += stride) {
        const float4 z = Z4[i], t = T4[i];
        float4 d;
        one(z.x, t.x, d.x);
        one(z.y, t.y, d.y);
        one(z.z, t.z, d.z);
        one(z.w, t.w, d.w);
        D4[i] = d;
    }
    // tail (count % 4 elements) on the first threads of the grid
    const size_t tail = n4 * 4 + gid;
    if (tail < (size_t)count) {
        float d;
        one(Z[tail], T[tail], d);
        dZ[tail] = d;
    }

    red[tid] = acc;
    __syncthreads();
#pragma unroll
    for (int w = LOSS_THREADS / 2; w > 0; w >>= 1) {
        if (tid < w) red[tid] = red[tid] + red[tid + w];
        __syncthreads();
    }
    if (tid == 0) loss_partial[blockIdx.x] = (float)red[0];
}

// One block: accum[0] += weight * sum(loss_partial[0..blocks)), in double,
// thread j summing j, j+256, ... then a fixed-shape tree.
// Launch: grid = 1, blockDim = 256 exactly.
extern "C" __global__ void __launch_bounds__(LOSS_THREADS, LOSS_MIN_BLOCKS)
loss_accumulate(const float* __restrict__ loss_partial, int blocks, double* accum, double weight) {
    __shared__ double red[LOSS_THREADS];
    const int tid = threadIdx.x;
    double acc = 0.0;
    for (int i = tid; i < blocks; i += LOSS_THREADS) acc += (double)loss_partial[i];
    red[tid] = acc;
    __syncthreads();
#pragma unroll
    for (int w = LOSS_THREADS / 2; w > 0; w >>= 1) {
        if (tid < w) red[tid] = red[tid] + red[tid + w];
        __syncthreads();
    }
    if (tid == 0) accum[0] = __dadd_rn(accum[0], __dmul_rn(weight, red[0]));
}
