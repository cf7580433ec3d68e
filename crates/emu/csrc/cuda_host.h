// The subset of CUDA C++ that kernels/*.cu use, for compiling them as host
// C++ (g++/clang++) and running them on the CPU: each CUDA thread is a fiber,
// a block's fibers run on one OS thread, __syncthreads() and the warp-wide
// mma.sync are barriers between fibers. See runtime.cpp.
//
// The kernels see DAE_HOST_EMULATION defined; their inline PTX (cvt to
// tf32/bf16, mma.sync) has an #ifdef'd call into dae_emu:: instead, written
// from the PTX ISA's statement of each instruction, not from the kernel.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#define DAE_HOST_EMULATION 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Shared memory: one instance per kernel (blocks run one after another, and
// launches one at a time), all in the section dae_smem, which the runtime
// fills with 0xFF (NaN in every float type) before each block: a read of a
// word the block has not written shows up as NaN, as garbage would on a GPU.
// GCC ignores the section attribute on statics of function templates (the
// GEMMs' tiles): those keep the previous block's values; their reads of
// never-written words are tools/emu_ptx_check.py's to find.
#define __shared__ __attribute__((section("dae_smem"))) static

struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(4) uchar4 { unsigned char x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

struct dae_dim3 { unsigned x, y, z; };

namespace dae_emu {
extern thread_local const dae_dim3* thread_idx;
extern thread_local dae_dim3 block_idx, block_dim, grid_dim;

void syncthreads();

// PTX cvt.rna.tf32.f32 d, a (round to nearest, ties away from zero).
unsigned cvt_rna_tf32(float a);
// PTX cvt.rn.bf16x2.f32 d, a, b: d = {bf16(a) in bits 16..31, bf16(b) in 0..15}.
unsigned cvt_rn_bf16x2(float a, float b);
// PTX mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 with C = D: a warp collective.
void mma_m16n8k8_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]);
// PTX mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 with C = D.
void mma_m16n8k16_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]);

// args[i] points at the value of the kernel's i-th parameter (the CUDA driver's
// kernelParams convention).
template <class... A, std::size_t... I>
void call_with(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}
template <class... A>
void call(void (*f)(A...), void** args) {
    call_with(f, args, std::index_sequence_for<A...>{});
}

// A parameter's kind and size, as the launcher must pass it: 'p' pointer,
// 'i' integer, 'f' floating point; code = kind * 16 + sizeof.
template <class T>
constexpr unsigned param_code() {
    using U = std::remove_cv_t<T>;
    constexpr unsigned kind = std::is_pointer_v<U> ? 'p' : std::is_floating_point_v<U> ? 'f' : 'i';
    return kind * 16 + sizeof(U);
}
template <class... A>
struct ParamCodes {
    static constexpr unsigned count = sizeof...(A);
    static constexpr unsigned codes[sizeof...(A) + 1] = {param_code<A>()..., 0};
};
template <class... A>
constexpr ParamCodes<A...> param_codes(void (*)(A...)) {
    return {};
}
}  // namespace dae_emu

#define threadIdx (*dae_emu::thread_idx)
#define blockIdx (dae_emu::block_idx)
#define blockDim (dae_emu::block_dim)
#define gridDim (dae_emu::grid_dim)
#define warpSize 32
#define __syncthreads() dae_emu::syncthreads()

// IEEE round-to-nearest arithmetic; the emulator is compiled with
// -ffp-contract=off, so plain operators do not fuse either.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
// expf, log1pf, fabsf, fmaxf: the C library's (a few ulp from CUDA's).
#include <math.h>
