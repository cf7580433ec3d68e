// LAMB (You et al., "Large Batch Optimization for Deep Learning", ICLR 2020)
// over the flat parameter buffer, one trust ratio per tensor; and the
// learning-rate schedule (dae_lr_at) evaluated from the device step counter.
//
// Self-contained: no #include. NVRTC options: --std=c++17 -arch=compute_XX --fmad=true.
// All arithmetic uses explicit _rn intrinsics in the order of
// crates/core/src/cpu/lamb.rs and crates/core/src/schedule.rs, so no FMA
// contraction changes the bits: dae_lr_at equals LrSchedule::lr_at bit for
// bit, and m, v and the update u equal the CPU's bit for bit. The norms are
// summed in a fixed order here (below) and in another fixed order on the
// CPU, so the trust ratio (and the new parameters) may differ from the CPU's
// in the last bit; both are deterministic.
//
// Tensor table (int words, crates/core/src/cuda/lamb_plan.rs LambTable):
//   T records {offset, len, first_chunk, decay} (decay 1: weight decay
//   applies), then C words chunk_tensor[c]. Tensor t's chunks are
//   first_chunk(t) .. first_chunk(t+1) (C for the last), chunk c covering
//   elements offset + (c - first_chunk)*LAMB_CHUNK .. min(+LAMB_CHUNK, offset+len).
// Scratch (double): 2C partial sums {Σw², Σu²} per chunk, then T scales.
//
// Per step t = *step (1-based, already incremented):
//   kernel 1 lamb_moments, per element (in place; grads become u):
//     m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g
//     u = (m*ic1) / (sqrt(v*ic2) + eps)  [+ wd*w where the tensor decays]
//     ic1 = (float)(1/(1-b1^t)), ic2 = (float)(1/(1-b2^t)) in double
//     partial[2c] = Σ w², partial[2c+1] = Σ u² over chunk c, in double:
//     thread i sums elements i, i+256, ... in order, then a fixed tree.
//   kernel 2 lamb_trust_ratio, per tensor: W = Σ partial[2c], U = Σ
//     partial[2c+1] over its chunks (thread i: chunks i, i+256, ..., in
//     order, then the tree); r = sqrt(W)/sqrt(U), 1 when W or U is 0;
//     scale = (float)(lr * r), lr = dae_lr_at(t, schedule).
//   kernel 3 lamb_apply, per element: w = w - scale*u.
// Launch (each): blockDim = 256 exactly (the trees assume it), any grid >= 1
// (grid-stride over chunks / tensors: the bits do not depend on the grid);
// the plan uses grid = min(C, 8*SMs), min(T, 8*SMs), min(C, 8*SMs).
// No alignment needed beyond the types' own (tensors start anywhere).

#define LAMB_THREADS 256
#define LAMB_CHUNK 4096

// ---- The learning-rate schedule (crates/core/src/schedule.rs) ----------
// The same function goes into adam.cu's adam_step (adam-schedule.patch).

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

// ---- LAMB ----------------------------------------------------------------

// base^t by binary powering: adam.cu adam_powi (compiler-rt __powidf2, what
// Rust's f64::powi calls), so the bias corrections equal the CPU's.
__device__ __forceinline__ double lamb_powi(double base, int t) {
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

// Sums a[0..256) and b[0..256) into a[0], b[0] by a fixed halving tree.
// Every thread of the block calls it; the caller wrote a[tid], b[tid].
__device__ __forceinline__ void lamb_tree2(double* a, double* b) {
    const int tid = threadIdx.x;
    __syncthreads();
    for (int s = LAMB_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s) {
            a[tid] = __dadd_rn(a[tid], a[tid + s]);
            b[tid] = __dadd_rn(b[tid], b[tid + s]);
        }
        __syncthreads();
    }
}

// Chunk c's element range [begin, end) and tensor record.
__device__ __forceinline__ const int* lamb_chunk(const int* table, int tensors, int c, int& begin,
                                                 int& end) {
    const int* rec = table + 4 * table[4 * tensors + c];
    begin = rec[0] + (c - rec[2]) * LAMB_CHUNK;
    const int stop = rec[0] + rec[1];
    end = begin + LAMB_CHUNK < stop ? begin + LAMB_CHUNK : stop;
    return rec;
}

// Designed for at least 4 blocks of 256 threads per SM (≤ 64 registers).
extern "C" __global__ void __launch_bounds__(LAMB_THREADS, 4)
lamb_moments(const float* __restrict__ params, float* __restrict__ grads, float* __restrict__ m,
             float* __restrict__ v, const int* __restrict__ table, int tensors, int chunks,
             const int* __restrict__ step, float beta1, float beta2, float eps, float weight_decay,
             double* __restrict__ scratch) {
    __shared__ double sw[LAMB_THREADS];
    __shared__ double su[LAMB_THREADS];
    const int t = *step;
    const float ic1 = (float)__ddiv_rn(1.0, __dsub_rn(1.0, lamb_powi((double)beta1, t)));
    const float ic2 = (float)__ddiv_rn(1.0, __dsub_rn(1.0, lamb_powi((double)beta2, t)));
    const float a1 = __fsub_rn(1.0f, beta1), a2 = __fsub_rn(1.0f, beta2);
    const int tid = threadIdx.x;
    for (int c = blockIdx.x; c < chunks; c += gridDim.x) {
        int begin, end;
        const int* rec = lamb_chunk(table, tensors, c, begin, end);
        const bool decay = rec[3] != 0 && weight_decay != 0.0f;
        double ws = 0.0, us = 0.0;
        for (int i = begin + tid; i < end; i += LAMB_THREADS) {
            const float w = params[i], g = grads[i];
            const float mn = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(a1, g));
            const float vn = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(__fmul_rn(a2, g), g));
            m[i] = mn;
            v[i] = vn;
            float u = __fdiv_rn(__fmul_rn(mn, ic1), __fadd_rn(__fsqrt_rn(__fmul_rn(vn, ic2)), eps));
            if (decay) u = __fadd_rn(u, __fmul_rn(weight_decay, w));
            grads[i] = u;
            ws = __dadd_rn(ws, __dmul_rn((double)w, (double)w));
            us = __dadd_rn(us, __dmul_rn((double)u, (double)u));
        }
        sw[tid] = ws;
        su[tid] = us;
        lamb_tree2(sw, su);
        if (tid == 0) {
            scratch[2 * c] = sw[0];
            scratch[2 * c + 1] = su[0];
        }
        __syncthreads();  // sw/su are rewritten for the next chunk
    }
}

// Designed for at least 4 blocks of 256 threads per SM (≤ 64 registers).
extern "C" __global__ void __launch_bounds__(LAMB_THREADS, 4)
lamb_trust_ratio(const int* __restrict__ table, int tensors, int chunks, const int* __restrict__ step,
                 int lr_kind, float lr_peak, int lr_warmup, int lr_total, float lr_final,
                 double* __restrict__ scratch) {
    __shared__ double sw[LAMB_THREADS];
    __shared__ double su[LAMB_THREADS];
    const int tid = threadIdx.x;
    for (int tensor = blockIdx.x; tensor < tensors; tensor += gridDim.x) {
        const int first = table[4 * tensor + 2];
        const int last = tensor + 1 < tensors ? table[4 * (tensor + 1) + 2] : chunks;
        double ws = 0.0, us = 0.0;
        for (int c = first + tid; c < last; c += LAMB_THREADS) {
            ws = __dadd_rn(ws, scratch[2 * c]);
            us = __dadd_rn(us, scratch[2 * c + 1]);
        }
        sw[tid] = ws;
        su[tid] = us;
        lamb_tree2(sw, su);
        if (tid == 0) {
            const double wn = sw[0], un = su[0];
            const double r = wn > 0.0 && un > 0.0 ? __ddiv_rn(__dsqrt_rn(wn), __dsqrt_rn(un)) : 1.0;
            const float lr = dae_lr_at(*step, lr_kind, lr_peak, lr_warmup, lr_total, lr_final);
            scratch[2 * chunks + tensor] = (double)(float)__dmul_rn((double)lr, r);
        }
        __syncthreads();
    }
}

// Designed for 8 blocks of 256 threads per SM (≤ 32 registers): memory-bound.
extern "C" __global__ void __launch_bounds__(LAMB_THREADS, 8)
lamb_apply(float* __restrict__ params, const float* __restrict__ grads,
           const int* __restrict__ table, int tensors, int chunks,
           const double* __restrict__ scratch) {
    for (int c = blockIdx.x; c < chunks; c += gridDim.x) {
        int begin, end;
        lamb_chunk(table, tensors, c, begin, end);
        const float scale = (float)scratch[2 * chunks + table[4 * tensors + c]];
        for (int i = begin + threadIdx.x; i < end; i += LAMB_THREADS)
            params[i] = __fsub_rn(params[i], __fmul_rn(scale, grads[i]));
    }
}

// ---- Test probes (crates/emu/tests/schedule.rs) ---------------------------

// out[i] = dae_lr_at(i + 1, schedule) for i < steps. Grid-stride, blockDim 256.
// test-only
extern "C" __global__ void __launch_bounds__(LAMB_THREADS, 4)
schedule_probe(float* out, int steps, int lr_kind, float lr_peak, int lr_warmup, int lr_total,
               float lr_final) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < steps; i += gridDim.x * blockDim.x)
        out[i] = dae_lr_at(i + 1, lr_kind, lr_peak, lr_warmup, lr_total, lr_final);
}

// out[i] = dae_cos_pi(p[i]) for i < n. Grid-stride, blockDim 256.
// test-only
extern "C" __global__ void __launch_bounds__(LAMB_THREADS, 4)
cos_pi_probe(const double* p, double* out, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = dae_cos_pi(p[i]);
}
