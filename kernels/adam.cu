// Keras-3 Adam over the flat parameter buffer; step counter on the device.
//
// Self-contained: no #include. NVRTC options: --std=c++17 -arch=compute_XX --fmad=true.
// Elementwise arithmetic uses explicit _rn intrinsics in the same order as
// crates/core/src/cpu/adam.rs, so no FMA contraction changes the bits: given
// the same alpha the GPU update equals the CPU update bit for bit.

// t = *step (1-based, already incremented for this step)
// alpha = (float)(lr * sqrt(1 - beta2^t) / (1 - beta1^t)), in double, with
// beta^t by binary powering exactly as Rust's powi (see adam_powi)
// m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g;  p -= (alpha*m) / (sqrt(v) + eps)
// Launch: blockDim = 256, any grid >= 1 (grid-stride); suggested
// grid = min(ceil(n/4/256), 4*SMs). params/grads/m/v: 16-byte aligned bases.
__device__ __forceinline__ void adam_one(float& p, float g, float& m, float& v, float alpha,
                                         float b1, float b2, float eps) {
    const float mn = __fadd_rn(__fmul_rn(b1, m), __fmul_rn(__fsub_rn(1.0f, b1), g));
    const float vn = __fadd_rn(__fmul_rn(b2, v), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), g), g));
    m = mn;
    v = vn;
    p = __fsub_rn(p, __fdiv_rn(__fmul_rn(alpha, mn), __fadd_rn(__fsqrt_rn(vn), eps)));
}

// base^t for t >= 0 by binary powering, the algorithm of compiler-rt's
// __powidf2 that Rust's f64::powi lowers to (with the same roundings), so
// alpha here equals crates/core AdamConfig::alpha bit for bit. _rn: no FMA
// contraction with the subtraction that follows.
__device__ __forceinline__ double adam_powi(double base, int t) {
    double r = 1.0;
    unsigned e = t < 0 ? 0u - (unsigned)t : (unsigned)t;
    for (;;) {
        if (e & 1u) r = __dmul_rn(r, base);
        e >>= 1;
        if (e == 0u) break;
        base = __dmul_rn(base, base);
    }
    return t < 0 ? __ddiv_rn(1.0, r) : r;
}

// Designed for at least 4 blocks of 256 threads per SM (≤ 64 registers).
extern "C" __global__ void __launch_bounds__(256, 4)
adam_step(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
          float* __restrict__ v, int n, const int* __restrict__ step, float lr, float beta1,
          float beta2, float eps) {
    const int t = *step;
    const double c1 = __dsub_rn(1.0, adam_powi((double)beta1, t));
    const double c2 = __dsub_rn(1.0, adam_powi((double)beta2, t));
    const float alpha = (float)__ddiv_rn(__dmul_rn((double)lr, __dsqrt_rn(c2)), c1);

    const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t n4 = (size_t)n >> 2;
    float4* P4 = reinterpret_cast<float4*>(params);
    const float4* G4 = reinterpret_cast<const float4*>(grads);
    float4* M4 = reinterpret_cast<float4*>(m);
    float4* V4 = reinterpret_cast<float4*>(v);
    for (size_t i = gid; i < n4; i += stride) {
        float4 p = P4[i], mm = M4[i], vv = V4[i];
        const float4 g = G4[i];
        adam_one(p.x, g.x, mm.x, vv.x, alpha, beta1, beta2, eps);
        adam_one(p.y, g.y, mm.y, vv.y, alpha, beta1, beta2, eps);
        adam_one(p.z, g.z, mm.z, vv.z, alpha, beta1, beta2, eps);
        adam_one(p.w, g.w, mm.w, vv.w, alpha, beta1, beta2, eps);
        P4[i] = p; M4[i] = mm; V4[i] = vv;
    }
    const size_t tail = n4 * 4 + gid;
    if (tail < (size_t)n) {
        float p = params[tail], mm = m[tail], vv = v[tail];
        adam_one(p, grads[tail], mm, vv, alpha, beta1, beta2, eps);
        params[tail] = p; m[tail] = mm; v[tail] = vv;
    }
}

// *step += 1. Launch: grid = 1, blockDim = 1.
extern "C" __global__ void step_increment(int* step) {
    if (threadIdx.x == 0 && blockIdx.x == 0) step[0] += 1;
}
