// Kernels for the emulator's own tests (crates/emu/tests/race.rs, mma.rs), compiled
// like kernels/*.cu but only into the emulator. Each takes `sync`: 1 keeps
// the barrier that orders its shared-memory accesses, 0 drops it (a race).

// Read after write: thread i reads the word thread i+1 wrote.
extern "C" __global__ void emu_test_raw(float* out, int sync) {
    __shared__ float s[64];
    const int i = threadIdx.x, n = blockDim.x;
    s[i] = (float)i;
    if (sync) __syncthreads();
    out[i] = s[(i + 1) % n];
}

// Write after read: thread i reads word i+1, then thread i+1 overwrites it.
extern "C" __global__ void emu_test_war(float* out, int sync) {
    __shared__ float s[64];
    const int i = threadIdx.x, n = blockDim.x;
    s[i] = (float)i;
    __syncthreads();
    const float x = s[(i + 1) % n];
    if (sync) __syncthreads();
    s[i] = 2.0f * x;
    __syncthreads();
    out[i] = s[i];
}

// A shared tile in a function template (GCC ignores the section attribute
// there: the detector must find it by name), written as float4 by a thread
// of another warp than the reader's; plus reads of one word by every thread
// and a thread re-reading its own writes, which are no race.
template <int N>
__device__ void tile_exchange(float* out, int sync) {
    __shared__ __align__(16) float t[N];
    __shared__ float everyone;
    const int i = threadIdx.x;
    if (i == 0) everyone = 1.0f;
    if (4 * i < N) {
        *reinterpret_cast<float4*>(&t[4 * i]) = make_float4(i, i, i, i);
        out[i] = t[4 * i] + t[4 * i + 3];  // its own words
    }
    __syncthreads();
    const float e = everyone;  // read by all: no race
    if (i == 0) t[N - 1] = e;  // the last float4's word, written by thread N/4 - 1
    if (sync) __syncthreads();
    if (i == N / 4 - 1) out[i] = t[N - 1];
}

extern "C" __global__ void emu_test_template(float* out, int sync) { tile_exchange<256>(out, sync); }

// One warp, one MMA with every A and B element `ab` and every accumulator
// `c`: d[lane * 4 + i] is the lane's i-th result register. bf16: m16n8k16
// (16 products per output), else tf32 m16n8k8 (8).
extern "C" __global__ void emu_test_mma(float* d, float c, float ab, int bf16) {
    float acc[4] = {c, c, c, c};
    unsigned a[4], b[2];
    const unsigned word = bf16 ? dae_emu::cvt_rn_bf16x2(ab, ab) : dae_emu::cvt_rna_tf32(ab);
    for (int i = 0; i < 4; ++i) a[i] = word;
    for (int i = 0; i < 2; ++i) b[i] = word;
    if (bf16)
        dae_emu::mma_m16n8k16_bf16(acc, a, b);
    else
        dae_emu::mma_m16n8k8_tf32(acc, a, b);
    for (int i = 0; i < 4; ++i) d[threadIdx.x * 4 + i] = acc[i];
}

// One warp's traffic with known counts (crates/emu/tests/trace.rs): global
// loads at stride 1 (4 sectors, 1 line) and 32 floats (32 of each); shared
// stores at stride 1 (1 wavefront) and 2 (2: a 2-way conflict); a float4
// shared load (4 phases of 8 lanes, 1 wavefront each); a stride-1 store.
extern "C" __global__ void emu_test_traffic(const float* in, float* out) {
    __shared__ __align__(16) float s[160];
    const int i = threadIdx.x;
    const float a = in[i];
    const float b = in[32 * i];
    s[i] = a;
    s[64 + 2 * i] = b;
    __syncthreads();
    const float4 v = *reinterpret_cast<const float4*>(&s[4 * i]);
    out[i] = v.x + v.y + v.z + v.w;
}
