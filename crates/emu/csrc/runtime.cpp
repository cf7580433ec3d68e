// The emulator's runtime: a launch runs the grid's blocks one after another;
// each block's threads are fibers on the calling OS thread, switched only at
// barriers (__syncthreads, and the warp-wide mma.sync), round-robin, so a run
// is deterministic for a given thread order. Strict where CUDA is undefined: a thread that exits while
// others wait at a barrier, or a barrier nobody can complete, fails the launch.
#include "cuda_host.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

// Bounds of the kernels' __shared__ variables (see cuda_host.h), from the linker.
extern "C" char __start_dae_smem[] __attribute__((weak));
extern "C" char __stop_dae_smem[] __attribute__((weak));

namespace dae_emu {

thread_local const dae_dim3* thread_idx;
thread_local dae_dim3 block_idx, block_dim, grid_dim;

namespace {

// ---------------------------------------------------------------- fibers
#if defined(__x86_64__)
// switch_stack(save, load): pushes the SysV callee-saved registers, stores the
// stack pointer in *save, continues on stack `load` (popping what it pushed).
extern "C" void dae_emu_switch_stack(void** save, void* load);
asm(R"(
    .text
    .globl dae_emu_switch_stack
    .type dae_emu_switch_stack, @function
dae_emu_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size dae_emu_switch_stack, .-dae_emu_switch_stack
    .section .note.GNU-stack,"",@progbits
)");
#else
#error "the kernel emulator's fiber switch is written for x86-64"
#endif

constexpr size_t kStackBytes = 256 * 1024;  // UBSan-instrumented frames are large
constexpr size_t kGuardBytes = 4096;

struct Fiber {
    void* sp = nullptr;
    char* stack = nullptr;  // mmap'd: [guard page | stack]
    dae_dim3 tid{};
    int linear = 0;
    bool done = false;
};

struct Barrier {
    int arrived = 0;
    unsigned generation = 0;
};

struct WarpMma {
    unsigned a[32][4];
    unsigned b[32][2];
    float c[32][4];
};

struct Block {
    ~Block() {
        for (Fiber& f : fibers) munmap(f.stack, kStackBytes + kGuardBytes);
    }
    std::vector<Fiber> fibers;
    int threads = 0;
    int live = 0;
    Barrier block_barrier;
    std::vector<Barrier> warp_barriers;
    std::vector<WarpMma> warp_mma;
    std::vector<int> warp_live;
};

struct Launch {
    void (*trampoline)(void**) = nullptr;
    void** args = nullptr;
};

thread_local Block t_block;
thread_local Launch t_launch;
thread_local Fiber* t_current = nullptr;
thread_local void* t_scheduler_sp = nullptr;
thread_local bool t_progress = false;
thread_local std::string t_error;

struct LaunchFailed {};

void yield_to_scheduler() { dae_emu_switch_stack(&t_current->sp, t_scheduler_sp); }

void fail(const std::string& why) {
    if (t_error.empty()) t_error = why;
    // Park this fiber for good; the scheduler sees the error and stops.
    for (;;) yield_to_scheduler();
}

[[noreturn]] void fiber_entry() {
    t_launch.trampoline(t_launch.args);
    t_current->done = true;
    t_progress = true;
    Block& b = t_block;
    b.live -= 1;
    b.warp_live[t_current->linear / 32] -= 1;
    if (b.block_barrier.arrived > 0)
        fail("a thread exited while others wait at __syncthreads() (undefined in CUDA)");
    if (b.warp_barriers[t_current->linear / 32].arrived > 0)
        fail("a thread exited while its warp waits in mma.sync (undefined in CUDA)");
    yield_to_scheduler();
    std::abort();  // a finished fiber is never resumed
}

char* new_stack() {
    void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mprotect(p, kGuardBytes, PROT_NONE);  // a stack overflow faults instead of corrupting
    return static_cast<char*>(p);
}

// A fresh context whose first switch-in enters fiber_entry.
void reset(Fiber& f) {
    char* top = f.stack + kGuardBytes + kStackBytes;  // 4096-aligned
    void** sp = reinterpret_cast<void**>(top - 64);
    for (int i = 0; i < 6; ++i) sp[i] = nullptr;  // r15 r14 r13 r12 rbx rbp
    sp[6] = reinterpret_cast<void*>(&fiber_entry);  // `ret` target; rsp ≡ 8 (mod 16) on entry
    sp[7] = nullptr;
    f.sp = sp;
    f.done = false;
}

// Waits until `expected` fibers have arrived at `b`. The last to arrive
// yields too, so every thread leaves the barrier in the scheduler's order
// (and reversing that order flips the order of every pair of threads).
void barrier(Barrier& b, int expected) {
    const unsigned gen = b.generation;
    t_progress = true;
    if (++b.arrived == expected) {
        b.arrived = 0;
        b.generation += 1;
        yield_to_scheduler();
        return;
    }
    while (b.generation == gen) yield_to_scheduler();
}

bool run_block(unsigned threads, bool reverse) {
    Block& b = t_block;
    while (b.fibers.size() < threads) {
        Fiber f;
        f.stack = new_stack();
        if (f.stack == nullptr) {
            t_error = "cannot map a fiber stack";
            return false;
        }
        b.fibers.push_back(f);
    }
    const unsigned warps = (threads + 31) / 32;
    b.warp_barriers.assign(warps, Barrier{});
    b.warp_mma.resize(warps);
    b.warp_live.assign(warps, 0);
    b.block_barrier = Barrier{};
    if (__start_dae_smem != nullptr)
        std::memset(__start_dae_smem, 0xff, static_cast<size_t>(__stop_dae_smem - __start_dae_smem));
    b.threads = static_cast<int>(threads);
    b.live = b.threads;
    for (unsigned i = 0; i < threads; ++i) {
        Fiber& f = b.fibers[i];
        reset(f);
        f.linear = static_cast<int>(i);
        f.tid = {i % block_dim.x, (i / block_dim.x) % block_dim.y, i / (block_dim.x * block_dim.y)};
        b.warp_live[i / 32] += 1;
    }
    while (b.live > 0) {
        t_progress = false;
        for (unsigned j = 0; j < threads; ++j) {
            Fiber& f = b.fibers[reverse ? threads - 1 - j : j];
            if (f.done) continue;
            t_current = &f;
            thread_idx = &f.tid;
            dae_emu_switch_stack(&t_scheduler_sp, f.sp);
            if (!t_error.empty()) return false;
        }
        if (!t_progress && b.live > 0) {
            t_error = "deadlock: every live thread waits at a barrier that cannot complete";
            return false;
        }
    }
    return true;
}

// ------------------------------------------------------------ PTX semantics
unsigned bits(float x) {
    unsigned u;
    std::memcpy(&u, &x, 4);
    return u;
}
float from_bits(unsigned u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

// The operand values a lane's registers hold, as the PTX ISA lays them out
// ("Matrix Fragments for mma.m16n8k8" .tf32 and "mma.m16n8k16" .bf16);
// g = lane >> 2, t = lane & 3.
float bf16_value(unsigned word, int half) { return from_bits(half ? (word & 0xffff0000u) : (word << 16)); }

template <int KDIM, class AFn, class BFn>
void warp_mma(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], AFn a_at, BFn b_at) {
    Block& blk = t_block;
    const int lane = t_current->linear % 32, warp = t_current->linear / 32;
    if (blk.warp_live[warp] != 32) fail("mma.sync in a warp without 32 live threads");
    WarpMma& w = blk.warp_mma[warp];
    std::memcpy(w.a[lane], a, sizeof a);
    std::memcpy(w.b[lane], b, sizeof b);
    std::memcpy(w.c[lane], d, sizeof d);
    barrier(blk.warp_barriers[warp], 32);
    // Rebuild A (16 x KDIM) and B (KDIM x 8) from every lane's registers.
    double A[16][KDIM], B[KDIM][8], C[16][8];
    for (int l = 0; l < 32; ++l) {
        a_at(l, w.a[l], A);
        b_at(l, w.b[l], B);
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = w.c[l][i];
    }
    barrier(blk.warp_barriers[warp], 32);  // every lane has read the exchange
    const int g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; ++i) {
        const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
        // Products of tf32 / bf16 operands are exact in double; the sum is
        // rounded once (hardware rounds its adder tree differently: the
        // tolerances cover it).
        double s = C[row][col];
        for (int k = 0; k < KDIM; ++k) s += A[row][k] * B[k][col];
        d[i] = static_cast<float>(s);
    }
}

}  // namespace

void syncthreads() {
    if (t_block.live != t_block.threads) fail("__syncthreads() after some threads of the block exited (undefined in CUDA)");
    barrier(t_block.block_barrier, t_block.threads);
}

unsigned cvt_rna_tf32(float a) {
    unsigned u = bits(a);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;  // inf, NaN: kept
    return (u + 0x1000u) & ~0x1fffu;                 // half an ulp of tf32, away from zero
}

static unsigned bf16_rn(float a) {
    const unsigned u = bits(a);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;  // NaN stays NaN
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                   // to nearest even
}

unsigned cvt_rn_bf16x2(float a, float b) { return (bf16_rn(a) << 16) | bf16_rn(b); }

void mma_m16n8k8_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    // A: a_i at (g + 8*(i&1), t + 4*(i>>1)); B: b_i at (k = t + 4i, n = g).
    warp_mma<8>(
        d, a, b,
        [](int l, const unsigned* r, double (&A)[16][8]) {
            const int g = l >> 2, t = l & 3;
            for (int i = 0; i < 4; ++i) A[g + 8 * (i & 1)][t + 4 * (i >> 1)] = from_bits(r[i] & ~0x1fffu);
        },
        [](int l, const unsigned* r, double (&B)[8][8]) {
            const int g = l >> 2, t = l & 3;
            for (int i = 0; i < 2; ++i) B[t + 4 * i][g] = from_bits(r[i] & ~0x1fffu);
        });
}

void mma_m16n8k16_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    // A: element e (register e/2, lower-indexed element in the low half) at
    // row g (+8 for e%4 >= 2), col 2t + (e&1) (+8 for e >= 4).
    // B: element e at k = 2t + (e&1) (+8 for e >= 2), n = g.
    warp_mma<16>(
        d, a, b,
        [](int l, const unsigned* r, double (&A)[16][16]) {
            const int g = l >> 2, t = l & 3;
            for (int e = 0; e < 8; ++e)
                A[g + ((e % 4) >= 2 ? 8 : 0)][2 * t + (e & 1) + (e >= 4 ? 8 : 0)] = bf16_value(r[e / 2], e & 1);
        },
        [](int l, const unsigned* r, double (&B)[16][8]) {
            const int g = l >> 2, t = l & 3;
            for (int e = 0; e < 4; ++e) B[2 * t + (e & 1) + (e >= 2 ? 8 : 0)][g] = bf16_value(r[e / 2], e & 1);
        });
}

}  // namespace dae_emu

// Kernel table, generated by build.rs from the kernels' extern "C" names.
struct DaeEmuKernel {
    const char* name;
    void (*trampoline)(void**);
    const unsigned* param_count;
    const unsigned* const* param_codes;  // dae_emu::param_code of each parameter
};
extern "C" const DaeEmuKernel dae_emu_kernels[];
extern "C" const size_t dae_emu_kernel_count;

// Runs kernel `name` over grid[3] x block[3] with the driver-style `args`,
// whose kinds and sizes (`arg_codes`, as dae_emu::param_code) must be the
// kernel's parameters'; `reverse` runs each block's threads in the opposite
// order between barriers (a kernel whose result depends on that order has a
// race). Returns 0, or 1 with a message in err.
extern "C" int dae_emu_launch(const char* name, const unsigned* grid, const unsigned* block, void** args,
                              const unsigned* arg_codes, unsigned arg_count, int reverse, char* err,
                              size_t err_len) {
    using namespace dae_emu;
    auto error = [&](const std::string& why) {
        std::snprintf(err, err_len, "%s", why.c_str());
        return 1;
    };
    const DaeEmuKernel* kernel = nullptr;
    for (size_t i = 0; i < dae_emu_kernel_count; ++i)
        if (std::strcmp(dae_emu_kernels[i].name, name) == 0) kernel = &dae_emu_kernels[i];
    if (kernel == nullptr) return error(std::string("no kernel named ") + name + " in kernels/");
    auto describe = [](unsigned code) {
        return std::string(1, static_cast<char>(code / 16)) + std::to_string(code % 16);
    };
    if (arg_count != *kernel->param_count)
        return error(std::string(name) + " takes " + std::to_string(*kernel->param_count) +
                     " parameters, launched with " + std::to_string(arg_count));
    for (unsigned i = 0; i < arg_count; ++i)
        if (arg_codes[i] != (*kernel->param_codes)[i])
            return error(std::string(name) + " parameter " + std::to_string(i) + " is " +
                         describe((*kernel->param_codes)[i]) + " (kind, bytes), launched with " +
                         describe(arg_codes[i]));
    const unsigned long long threads = 1ull * block[0] * block[1] * block[2];
    if (threads == 0 || threads > 1024) return error("block of " + std::to_string(threads) + " threads (CUDA allows 1 to 1024)");
    if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0 || grid[1] > 65535 || grid[2] > 65535)
        return error("grid dimensions outside CUDA's limits");
    // Shared memory is one static instance per kernel: one launch at a time.
    static std::mutex one_launch_at_a_time;
    std::lock_guard<std::mutex> lock(one_launch_at_a_time);
    t_error.clear();
    t_launch = Launch{kernel->trampoline, args};
    block_dim = {block[0], block[1], block[2]};
    grid_dim = {grid[0], grid[1], grid[2]};
    for (unsigned z = 0; z < grid[2]; ++z)
        for (unsigned y = 0; y < grid[1]; ++y)
            for (unsigned x = 0; x < grid[0]; ++x) {
                block_idx = {x, y, z};
                if (!run_block(static_cast<unsigned>(threads), reverse != 0))
                    return error(std::string(name) + " block (" + std::to_string(x) + "," + std::to_string(y) + "," +
                                 std::to_string(z) + "): " + t_error);
            }
    return 0;
}
