// Keras-3 Adam over the flat parameter buffer; step counter on the device;
// the learning rate from the schedule at that step (crates/core/src/schedule.rs);
// AdamW's decoupled weight decay when weight_decay != 0.
//
// Self-contained: no #include. NVRTC options: --std=c++17 -arch=compute_XX --fmad=true.
// Elementwise arithmetic uses explicit _rn intrinsics in the same order as
// crates/core/src/cpu/adam.rs, so no FMA contraction changes the bits: given
// the same alpha the GPU update equals the CPU update bit for bit.

// t = *step (1-based, already incremented for this step)
// lr = dae_lr_at(t, lr_kind, lr_peak, lr_warmup, lr_total, lr_final): the
// schedule, bit for bit LrSchedule::lr_at (a constant schedule without
// warmup gives lr_peak itself)
// alpha = (float)(lr * sqrt(1 - beta2^t) / (1 - beta1^t)), in double, with
// beta^t by binary powering exactly as Rust's powi (see adam_powi)
// m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g
// if weight_decay != 0: p -= (lr*weight_decay)*p   (AdamW, PyTorch's order)
// p -= (alpha*m) / (sqrt(v) + eps)
// Launch: blockDim = 256, any grid >= 1 (grid-stride); suggested
// grid = min(ceil(n/4/256), 4*SMs). params/grads/m/v: 16-byte aligned bases.
__device__ __forceinline__ void adam_one(float& p, float g, float& m, float& v, float alpha,
                                         float b1, float b2, float eps, bool decay, float lr_wd) {
    const float mn = __fadd_rn(__fmul_rn(b1, m), __fmul_rn(__fsub_rn(1.0f, b1), g));
    const float vn = __fadd_rn(__fmul_rn(b2, v), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), g), g));
    m = mn;
    v = vn;
    // Skipped, not multiplied by 0, so weight_decay = 0 keeps Adam's bits
    // (p - 0*p is not p for p = -0 or +-inf).
    if (decay) p = __fsub_rn(p, __fmul_rn(lr_wd, p));
    p = __fsub_rn(p, __fdiv_rn(__fmul_rn(alpha, mn), __fadd_rn(__fsqrt_rn(vn), eps)));
}

// The learning-rate schedule: kernels/lamb.cu's dae_lr_at, verbatim
// (every kernel file is self-contained; crates/emu/tests/schedule.rs checks
// that copy, crates/emu/tests/adam_schedule.rs this one, against Rust).
// 1/n! with alternating signs, the literals of schedule.rs COS_C / SIN_C.
__device__ __forceinline__ double dae_cos_poly(double x) {
    const double z = __dmul_rn(x, x);
    double r = 4.779477332387385e-14;
    r = __dadd_rn(-1.1470745597729725e-11, __dmul_rn(z, r));
    r = __dadd_rn(2.08767569878681e-09, __dmul_rn(z, r));
    r = __dadd_rn(-2.755731922398589e-07, __dmul_rn(z, r));
    r = __dadd_rn(2.48015873015873e-05, __dmul_rn(z, r));
    r = __dadd_rn(-0.001388888888888889, __dmul_rn(z, r));
    r = __dadd_rn(0.041666666666666664, __dmul_rn(z, r));
    r = __dadd_rn(-0.5, __dmul_rn(z, r));
    return __dadd_rn(1.0, __dmul_rn(z, r));
}

__device__ __forceinline__ double dae_sin_poly(double x) {
    const double z = __dmul_rn(x, x);
    double r = -7.647163731819816e-13;
    r = __dadd_rn(1.6059043836821613e-10, __dmul_rn(z, r));
    r = __dadd_rn(-2.505210838544172e-08, __dmul_rn(z, r));
    r = __dadd_rn(2.7557319223985893e-06, __dmul_rn(z, r));
    r = __dadd_rn(-0.0001984126984126984, __dmul_rn(z, r));
    r = __dadd_rn(0.008333333333333333, __dmul_rn(z, r));
    r = __dadd_rn(-0.16666666666666666, __dmul_rn(z, r));
    return __dmul_rn(x, __dadd_rn(1.0, __dmul_rn(z, r)));
}

// cos(pi*p), p in [0, 1] (schedule.rs cos_pi).
__device__ __forceinline__ double dae_cos_pi(double p) {
    double q = p, sign = 1.0;
    if (p > 0.5) {
        q = __dsub_rn(1.0, p);
        sign = -1.0;
    }
    const double pi = 3.141592653589793;
    const double c = q > 0.25 ? dae_sin_poly(__dmul_rn(pi, __dsub_rn(0.5, q)))
                              : dae_cos_poly(__dmul_rn(pi, q));
    return __dmul_rn(sign, c);
}

// The learning rate of 1-based step `step` (schedule.rs lr_formula).
// kind: 0 constant, 1 cosine (also one-cycle, its warmup resolved on the
// host), 2 linear.
__device__ __forceinline__ float dae_lr_at(int step, int kind, float peak, int warmup, int total,
                                           float final_fraction) {
    const double p = (double)peak;
    if (warmup > 0 && step <= warmup) return (float)__dmul_rn(p, __ddiv_rn((double)step, (double)warmup));
    if (kind == 0) return peak;
    const double progress =
        step >= total ? 1.0 : __ddiv_rn((double)(step - warmup), (double)(total - warmup));
    const double f = (double)final_fraction;
    const double shape = kind == 1 ? __dmul_rn(__dadd_rn(1.0, dae_cos_pi(progress)), 0.5)
                                   : __dsub_rn(1.0, progress);
    return (float)__dmul_rn(p, __dadd_rn(f, __dmul_rn(__dsub_rn(1.0, f), shape)));
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
          float* __restrict__ v, int n, const int* __restrict__ step, int lr_kind, float lr_peak,
          int lr_warmup, int lr_total, float lr_final, float beta1, float beta2, float eps,
          float weight_decay) {
    const int t = *step;
    const float lr = dae_lr_at(t, lr_kind, lr_peak, lr_warmup, lr_total, lr_final);
    const bool decay = weight_decay != 0.0f;
    const float lr_wd = __fmul_rn(lr, weight_decay);
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
        adam_one(p.x, g.x, mm.x, vv.x, alpha, beta1, beta2, eps, decay, lr_wd);
        adam_one(p.y, g.y, mm.y, vv.y, alpha, beta1, beta2, eps, decay, lr_wd);
        adam_one(p.z, g.z, mm.z, vv.z, alpha, beta1, beta2, eps, decay, lr_wd);
        adam_one(p.w, g.w, mm.w, vv.w, alpha, beta1, beta2, eps, decay, lr_wd);
        P4[i] = p; M4[i] = mm; V4[i] = vv;
    }
    const size_t tail = n4 * 4 + gid;
    if (tail < (size_t)n) {
        float p = params[tail], mm = m[tail], vv = v[tail];
        adam_one(p, grads[tail], mm, vv, alpha, beta1, beta2, eps, decay, lr_wd);
        params[tail] = p; m[tail] = mm; v[tail] = vv;
    }
}

// *step += 1. Launch: grid = 1, blockDim = 1.
extern "C" __global__ void step_increment(int* step) {
    if (threadIdx.x == 0 && blockIdx.x == 0) step[0] += 1;
}
