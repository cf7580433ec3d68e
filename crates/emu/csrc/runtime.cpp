// The emulator's runtime: a launch runs the grid's blocks one after another;
// each block's threads are fibers on the calling OS thread, switched only at
// barriers (__syncthreads, and the warp-wide mma.sync), round-robin, so a run
// is deterministic for a given thread order. Strict where CUDA is undefined: a thread that exits while
// others wait at a barrier, or a barrier nobody can complete, fails the launch.
#include "cuda_host.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
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
    const char* name = nullptr;
    void (*trampoline)(void**) = nullptr;
    void** args = nullptr;
};

thread_local Block t_block;
thread_local Launch t_launch;
thread_local Fiber* t_current = nullptr;
thread_local void* t_scheduler_sp = nullptr;
thread_local bool t_progress = false;
thread_local std::string t_error;
// The MMA's accumulation model for this launch (dae_emu_launch's mma_model).
enum MmaModel { kMmaExact = 0, kMmaTruncate = 1 };
thread_local int t_mma_model = kMmaExact;

struct LaunchFailed {};

void yield_to_scheduler() { dae_emu_switch_stack(&t_current->sp, t_scheduler_sp); }

void fail(const std::string& why) {
    if (t_error.empty()) t_error = why;
    // Park this fiber for good; the scheduler sees the error and stops.
    for (;;) yield_to_scheduler();
}

// ------------------------------------------------------- race detector
// The kernels are compiled with -fsanitize=thread but not linked with
// libtsan: every load and store in them calls __tsan_readN / __tsan_writeN
// (defined below) with its address. Those that fall in a __shared__ variable
// are recorded per 4-byte word with the thread and the barrier interval (the
// block's count of completed __syncthreads()); a write by one thread and a
// read or write of the same word by another in one interval is a race
// whatever order the threads run in, and fails the launch.
//
// Where the shared variables are: GCC ignores cuda_host.h's section
// attribute on statics of function templates (the GEMMs' tiles), so they are
// found by name instead: the objects of the kernels' namespaces
// (dae_kernels_*) in the executable's own symbol table, with those in
// section dae_smem (the statics of extern "C" kernels, named without it).

struct Symbol {
    uintptr_t start, size;
    std::string name;
};

struct Symbols {
    bool loaded = false;
    std::string error;
    std::vector<Symbol> shared;     // dae_kernels_* objects, by address
    std::vector<Symbol> functions;  // every function, by address (to name sites)
    uintptr_t bias = 0;             // load address minus link address
};

// "ns::f<true, false>(float const*, int)::As" -> "ns::f<true, false>(...)::As"
std::string shorten(const char* mangled) {
    int status = 0;
    char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string in = status == 0 && d != nullptr ? d : mangled;
    std::free(d);
    std::string out;
    int depth = 0;
    for (char c : in) {
        if (c == '(') {
            if (depth++ == 0) out += "(...)";
        } else if (c == ')') {
            --depth;
        } else if (depth == 0) {
            out += c;
        }
    }
    return out;
}

Symbols load_symbols() {
    Symbols s;
    s.loaded = true;
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&load_symbols), &info) == 0) {
        s.error = "dladdr failed";
        return s;
    }
    const char* path = info.dli_fname != nullptr && info.dli_fname[0] != 0 ? info.dli_fname : "/proc/self/exe";
    // The emulator is linked into an executable (not a shared library) in
    // every use; dli_fname can name it by argv[0], so read /proc/self/exe.
    if (std::strstr(path, ".so") == nullptr) path = "/proc/self/exe";
    const int fd = open(path, O_RDONLY);
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0) {
        s.error = std::string("cannot open ") + path;
        if (fd >= 0) close(fd);
        return s;
    }
    void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        s.error = std::string("cannot map ") + path;
        return s;
    }
    const char* base = static_cast<const char*>(map);
    const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
    const auto* ph = reinterpret_cast<const Elf64_Phdr*>(base + eh->e_phoff);
    uintptr_t min_vaddr = UINTPTR_MAX;
    for (int i = 0; i < eh->e_phnum; ++i)
        if (ph[i].p_type == PT_LOAD) min_vaddr = std::min<uintptr_t>(min_vaddr, ph[i].p_vaddr & ~uintptr_t{0xfff});
    s.bias = reinterpret_cast<uintptr_t>(info.dli_fbase) - min_vaddr;
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    const char* section_names = base + sh[eh->e_shstrndx].sh_offset;
    int smem_section = -1;  // the __shared__ variables of extern "C" kernels, whose names lack the namespace
    for (int i = 0; i < eh->e_shnum; ++i)
        if (std::strcmp(section_names + sh[i].sh_name, "dae_smem") == 0) smem_section = i;
    for (int i = 0; i < eh->e_shnum; ++i) {
        if (sh[i].sh_type != SHT_SYMTAB) continue;
        const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
        const char* names = base + sh[sh[i].sh_link].sh_offset;
        const size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
        for (size_t j = 0; j < n; ++j) {
            const unsigned type = ELF64_ST_TYPE(sym[j].st_info);
            if (sym[j].st_size == 0 || sym[j].st_shndx == SHN_UNDEF) continue;
            const char* name = names + sym[j].st_name;
            const uintptr_t at = s.bias + sym[j].st_value;
            if (type == STT_OBJECT &&
                (sym[j].st_shndx == smem_section || std::strstr(name, "dae_kernels_") != nullptr))
                s.shared.push_back({at, sym[j].st_size, shorten(name)});
            else if (type == STT_FUNC)
                s.functions.push_back({at, sym[j].st_size, name});
        }
    }
    munmap(map, static_cast<size_t>(st.st_size));
    auto by_start = [](const Symbol& a, const Symbol& b) { return a.start < b.start; };
    std::sort(s.shared.begin(), s.shared.end(), by_start);
    std::sort(s.functions.begin(), s.functions.end(), by_start);
    if (s.shared.empty())
        s.error = "no __shared__ variables (objects of namespace dae_kernels_*) in the symbol table of " +
                  std::string(path) + " (stripped?)";
    return s;
}

const Symbol* find(const std::vector<Symbol>& v, uintptr_t at) {
    auto it = std::upper_bound(v.begin(), v.end(), at, [](uintptr_t a, const Symbol& s) { return a < s.start; });
    if (it == v.begin()) return nullptr;
    --it;
    return at - it->start < it->size ? &*it : nullptr;
}

struct Word {
    unsigned interval = 0;  // the interval the fields below describe
    int writer = -1;        // linear thread id, -1: none
    int reader[2] = {-1, -1};  // two distinct readers (enough to find one that is not a given thread)
    const void* write_site = nullptr;
    const void* read_site[2] = {nullptr, nullptr};
};

struct RaceState {
    Symbols symbols;
    uintptr_t lo = 0, span = 0;  // [lo, lo + span): every shared variable
    std::vector<Word> words;     // one per 4 bytes of the span
    unsigned interval = 1;       // advanced at every block start and completed __syncthreads()
    unsigned block_interval0 = 1;
};

RaceState g_race;  // used only inside a launch (one at a time, under its mutex)

// Set up once, before the first launch; returns an error message or "".
std::string race_setup() {
    RaceState& r = g_race;
    if (r.symbols.loaded) return r.symbols.error;
    r.symbols = load_symbols();
    if (!r.symbols.error.empty()) return r.symbols.error;
    const uintptr_t lo = r.symbols.shared.front().start & ~uintptr_t{3};
    uintptr_t hi = lo;
    for (const Symbol& s : r.symbols.shared) hi = std::max(hi, s.start + s.size);
    r.words.assign((hi - lo + 3) / 4, Word{});
    r.lo = lo;
    r.span = hi - lo;
    return "";
}

std::string site(const void* pc) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(pc);
    char buf[64];
    std::snprintf(buf, sizeof buf, " [addr2line 0x%lx]", static_cast<unsigned long>(at - g_race.symbols.bias));
    const Symbol* f = find(g_race.symbols.functions, at);
    if (f == nullptr) return buf;
    char off[32];
    std::snprintf(off, sizeof off, "+0x%lx", static_cast<unsigned long>(at - f->start));
    return shorten(f->name.c_str()) + off + buf;
}

std::string thread_name(int linear) {
    const dae_dim3 t{linear % block_dim.x, (linear / block_dim.x) % block_dim.y, linear / (block_dim.x * block_dim.y)};
    return "thread " + std::to_string(linear) + " (warp " + std::to_string(linear / 32) + ", threadIdx (" +
           std::to_string(t.x) + "," + std::to_string(t.y) + "," + std::to_string(t.z) + "))";
}

[[noreturn]] void race(uintptr_t addr, const char* first, int first_thread, const void* first_site,
                       const char* second, const void* second_site) {
    const Symbol* v = find(g_race.symbols.shared, addr);
    std::string where = "shared address " + std::to_string(addr);
    if (v != nullptr) {
        const uintptr_t off = addr - v->start;
        where = v->name + " word " + std::to_string(off / 4) + " (byte " + std::to_string(off) + " of " +
                std::to_string(v->size) + ")";
    }
    fail("shared-memory race in barrier interval " +
         std::to_string(g_race.interval - g_race.block_interval0) + " of the block: " + where + " " + first +
         " by " + thread_name(first_thread) + " at " + site(first_site) + ", then " + second + " by " +
         thread_name(t_current->linear) + " at " + site(second_site) +
         ", with no __syncthreads() between");
    std::abort();  // fail() does not return
}

void access(const void* p, size_t bytes, bool write, const void* pc) {
    RaceState& r = g_race;
    const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    const int me = t_current->linear;
    const uintptr_t first = (addr - r.lo) / 4, last = (addr - r.lo + bytes - 1) / 4;
    for (uintptr_t i = first; i <= last && i < r.words.size(); ++i) {
        Word& w = r.words[i];
        const uintptr_t word_addr = r.lo + 4 * i;
        if (w.interval != r.interval) w = Word{r.interval};
        if (w.writer >= 0 && w.writer != me) race(word_addr, "written", w.writer, w.write_site, write ? "written" : "read", pc);
        if (write) {
            const int k = w.reader[0] >= 0 && w.reader[0] != me ? 0 : 1;
            if (w.reader[k] >= 0 && w.reader[k] != me) race(word_addr, "read", w.reader[k], w.read_site[k], "written", pc);
            w.writer = me;
            w.write_site = pc;
        } else if (w.reader[0] < 0) {
            w.reader[0] = me;
            w.read_site[0] = pc;
        } else if (w.reader[0] != me && w.reader[1] < 0) {
            w.reader[1] = me;
            w.read_site[1] = pc;
        }
    }
}

// ------------------------------------------------------- traffic counters
// With tracing on (dae_emu_launch's trace), each shared or global access is
// also gathered into warp requests: the n-th execution of an instruction
// site by each lane of a warp is the warp's n-th request there (exact for
// converged warps; lanes that skip an instruction leave their slot empty).
// A barrier or the block's end closes the requests and counts, per kernel
// and site: shared wavefronts (32 banks of 4 bytes; a request of 8- or
// 16-byte lanes is served in phases of 16 or 8 lanes, each taking as many
// wavefronts as its most-used bank has distinct words: the usual model of
// the hardware's bank conflicts), global 32-byte sectors and 128-byte lines.

struct Request {
    unsigned mask = 0;
    uintptr_t addr[32];
};

struct WarpSite {
    unsigned short next[32] = {};  // each lane's executions of the site so far
    std::vector<Request> requests;
    bool shared = false, write = false;
    unsigned size = 0;
};

struct SiteStats {
    bool shared = false, write = false;
    unsigned size = 0;
    unsigned long long requests = 0, wavefronts = 0, sectors = 0, lines = 0, bytes = 0;
};

struct Trace {
    bool on = false;
    std::vector<std::pair<uintptr_t, uintptr_t>> global;  // [start, end) of device allocations, sorted
    std::vector<std::map<const void*, WarpSite>> warps;
    std::map<std::pair<std::string, const void*>, SiteStats> sites;
};
Trace g_trace;

bool is_global(uintptr_t a) {
    const auto& g = g_trace.global;
    auto it = std::upper_bound(g.begin(), g.end(), a, [](uintptr_t x, const std::pair<uintptr_t, uintptr_t>& r) {
        return x < r.first;
    });
    return it != g.begin() && a < (--it)->second;
}

void trace_access(uintptr_t a, size_t bytes, bool write, const void* pc, bool shared) {
    const int lane = t_current->linear % 32, warp = t_current->linear / 32;
    if (g_trace.warps.size() <= static_cast<size_t>(warp)) g_trace.warps.resize(warp + 1);
    WarpSite& w = g_trace.warps[warp][pc];
    w.shared = shared;
    w.write = write;
    w.size = static_cast<unsigned>(bytes);
    const unsigned n = w.next[lane]++;
    if (w.requests.size() <= n) w.requests.resize(n + 1);
    w.requests[n].mask |= 1u << lane;
    w.requests[n].addr[lane] = a;
}

void trace_flush() {
    for (auto& warp : g_trace.warps) {
        for (auto& [pc, w] : warp) {
            SiteStats& st = g_trace.sites[{t_launch.name, pc}];
            st.shared = w.shared;
            st.write = w.write;
            st.size = w.size;
            const unsigned per_phase = w.size <= 4 ? 32 : w.size == 8 ? 16 : 8;
            for (const Request& r : w.requests) {
                st.requests += 1;
                st.bytes += static_cast<unsigned long long>(__builtin_popcount(r.mask)) * w.size;
                if (w.shared) {
                    for (unsigned p0 = 0; p0 < 32; p0 += per_phase) {
                        // (bank, word) of every word the phase's lanes touch, bank in the top bits
                        uint64_t key[128];
                        unsigned n = 0;
                        for (unsigned l = p0; l < p0 + per_phase; ++l) {
                            if (!(r.mask >> l & 1u)) continue;
                            for (uintptr_t word = r.addr[l] / 4; word <= (r.addr[l] + w.size - 1) / 4 && n < 128; ++word)
                                key[n++] = (uint64_t{word % 32} << 58) | (word & ((uint64_t{1} << 58) - 1));
                        }
                        std::sort(key, key + n);
                        n = static_cast<unsigned>(std::unique(key, key + n) - key);
                        unsigned most = 0, run = 0;
                        for (unsigned j = 0; j < n; ++j) {
                            run = j > 0 && key[j] >> 58 == key[j - 1] >> 58 ? run + 1 : 1;
                            most = std::max(most, run);
                        }
                        st.wavefronts += most;
                    }
                } else {
                    uintptr_t sectors[64], lines[64];
                    unsigned ns = 0, nl = 0;
                    for (unsigned l = 0; l < 32; ++l) {
                        if (!(r.mask >> l & 1u)) continue;
                        const uintptr_t first = r.addr[l], last = r.addr[l] + w.size - 1;
                        for (uintptr_t x = first / 32; x <= last / 32 && ns < 64; ++x) sectors[ns++] = x;
                        for (uintptr_t x = first / 128; x <= last / 128 && nl < 64; ++x) lines[nl++] = x;
                    }
                    std::sort(sectors, sectors + ns);
                    std::sort(lines, lines + nl);
                    st.sectors += static_cast<unsigned long long>(std::unique(sectors, sectors + ns) - sectors);
                    st.lines += static_cast<unsigned long long>(std::unique(lines, lines + nl) - lines);
                }
            }
        }
        warp.clear();
    }
}

inline void check(const void* p, size_t bytes, bool write, const void* pc) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const bool shared = a - g_race.lo < g_race.span;
    if (shared && t_current != nullptr) access(p, bytes, write, pc);
    if (g_trace.on && t_current != nullptr && (shared || is_global(a))) trace_access(a, bytes, write, pc, shared);
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
        if (&b == &t_block.block_barrier) {
            g_race.interval += 1;  // a new barrier interval
            if (g_trace.on) trace_flush();
        }
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
    g_race.interval += 1;  // no access of an earlier block races with this one's
    g_race.block_interval0 = g_race.interval;
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
    if (g_trace.on) trace_flush();
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

// x rounded toward zero to float (x finite, within float's range).
float to_float_rz(double x) {
    float f = static_cast<float>(x);
    if (std::fabs(static_cast<double>(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
    return f;
}

// One output of an MMA as the tensor cores accumulate it, following Fasi,
// Higham, Mikaitis and Pranesh, "Numerical behavior of NVIDIA tensor cores"
// (PeerJ Comput. Sci. 7:e330, 2021): the products are exact; they are added
// to the accumulator `block` at a time (4 for tf32, 8 for bf16: their A100
// finding), each addition aligning the block's products and the accumulator
// to the largest exponent among them and truncating the bits below 24
// significant bits of that largest term (no extra alignment bits: the V100's
// behaviour, a little worse than the A100's, so a bound that holds here
// holds there), then normalising once and truncating (round toward zero) to
// fp32.
float truncating_dot(double c, const double* a, const double* b, int step, int n, int block) {
    for (int k0 = 0; k0 < n; k0 += block) {
        double t[17];
        int m = 0;
        t[m++] = c;
        for (int k = k0; k < k0 + block && k < n; ++k) t[m++] = a[k] * b[k * step];
        double big = 0.0, exact = 0.0;
        bool finite = true;
        for (int j = 0; j < m; ++j) {
            exact += t[j];
            if (std::isfinite(t[j])) big = std::max(big, std::fabs(t[j]));
            else finite = false;
        }
        if (!finite || big == 0.0) {  // inf/NaN propagate as IEEE sums do; zeros stay exact
            c = static_cast<float>(exact);
            continue;
        }
        // The grid the block's terms are truncated to: 24 bits below the
        // leading bit of the largest.
        const double ulp = std::ldexp(1.0, std::ilogb(big) - 23);
        double sum = 0.0;  // multiples of ulp below 2^(ilogb+1) each, ≤ 17 of them: exact in double
        for (int j = 0; j < m; ++j) sum += std::trunc(t[j] / ulp) * ulp;
        if (std::fabs(sum) > 3.4028234663852886e38) {
            c = static_cast<float>(sum);  // overflow: inf, as the hardware's
            continue;
        }
        c = to_float_rz(sum);
    }
    return static_cast<float>(c);
}

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
        if (t_mma_model == kMmaTruncate) {
            d[i] = truncating_dot(C[row][col], A[row], &B[0][col], 8, KDIM, KDIM == 8 ? 4 : 8);
            continue;
        }
        // The exact model: products of tf32 / bf16 operands are exact in
        // double; the sum is rounded once (to nearest).
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
// race); `mma_model` 0 sums each MMA's products exactly and rounds once, 1
// aligns and truncates as the tensor cores do (truncating_dot); `trace`
// counts shared wavefronts and global sectors (see dae_emu_trace_*).
// Returns 0, or 1 with a message in err.
extern "C" int dae_emu_launch(const char* name, const unsigned* grid, const unsigned* block, void** args,
                              const unsigned* arg_codes, unsigned arg_count, int reverse, int mma_model,
                              int trace, char* err, size_t err_len) {
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
    const std::string setup = race_setup();
    if (!setup.empty()) return error("race detector: " + setup);
    t_launch = Launch{kernel->name, kernel->trampoline, args};
    t_mma_model = mma_model == kMmaTruncate ? kMmaTruncate : kMmaExact;
    g_trace.on = trace != 0;
    g_trace.warps.clear();
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

// The ThreadSanitizer entry points GCC's -fsanitize=thread instrumentation
// calls (nm -u on the kernels' objects lists them), in place of libtsan's.
#define DAE_TSAN_ACCESS(n)                                                                                     \
    extern "C" void __tsan_read##n(void* p) { dae_emu::check(p, n, false, __builtin_return_address(0)); }     \
    extern "C" void __tsan_write##n(void* p) { dae_emu::check(p, n, true, __builtin_return_address(0)); }     \
    extern "C" void __tsan_unaligned_read##n(void* p) {                                                      \
        dae_emu::check(p, n, false, __builtin_return_address(0));                                            \
    }                                                                                                        \
    extern "C" void __tsan_unaligned_write##n(void* p) { dae_emu::check(p, n, true, __builtin_return_address(0)); }
DAE_TSAN_ACCESS(1)
DAE_TSAN_ACCESS(2)
DAE_TSAN_ACCESS(4)
DAE_TSAN_ACCESS(8)
DAE_TSAN_ACCESS(16)
extern "C" void __tsan_read_range(void* p, unsigned long n) {
    if (n > 0) dae_emu::check(p, n, false, __builtin_return_address(0));
}
extern "C" void __tsan_write_range(void* p, unsigned long n) {
    if (n > 0) dae_emu::check(p, n, true, __builtin_return_address(0));
}
extern "C" void __tsan_func_entry(void*) {}
extern "C" void __tsan_func_exit() {}
extern "C" void __tsan_init() {}
extern "C" void __tsan_vptr_update(void**, void*) {}
extern "C" void __tsan_vptr_read(void**) {}

// The device allocations a traced launch's global accesses fall in: pairs
// (start, bytes), replacing the previous set.
extern "C" void dae_emu_trace_ranges(const unsigned long long* ranges, size_t count) {
    using namespace dae_emu;
    g_trace.global.clear();
    for (size_t i = 0; i < count; ++i)
        g_trace.global.push_back({static_cast<uintptr_t>(ranges[2 * i]),
                                  static_cast<uintptr_t>(ranges[2 * i] + ranges[2 * i + 1])});
    std::sort(g_trace.global.begin(), g_trace.global.end());
}

// The counters so far, one line per kernel and site, tab-separated: kernel,
// site, space (shared|global), ld|st, bytes per lane, requests, wavefronts,
// sectors, lines, bytes requested; then cleared. Returns the text's length
// (written only when it fits in `len`, else nothing is cleared).
extern "C" size_t dae_emu_trace_take(char* out, size_t len) {
    using namespace dae_emu;
    std::string text;
    for (const auto& [key, st] : g_trace.sites) {
        std::string site_name = site(key.second);
        site_name = site_name.substr(0, site_name.find(" [addr2line"));
        text += key.first + "\t" + site_name + "\t" + (st.shared ? "shared" : "global") + "\t" +
                (st.write ? "st" : "ld") + "\t" + std::to_string(st.size) + "\t" + std::to_string(st.requests) +
                "\t" + std::to_string(st.wavefronts) + "\t" + std::to_string(st.sectors) + "\t" +
                std::to_string(st.lines) + "\t" + std::to_string(st.bytes) + "\n";
    }
    if (text.size() < len) {
        std::memcpy(out, text.c_str(), text.size() + 1);
        g_trace.sites.clear();
    }
    return text.size();
}
