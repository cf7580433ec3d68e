#!/usr/bin/env python3
"""Compile-check the CUDA kernels in kernels/*.cu without a GPU.

For each source file and each target (compute_80 / sm_80, compute_90 / sm_90):
  1. NVRTC (loaded with ctypes from the nvidia-cuda-nvrtc wheel) compiles it to
     PTX with exactly the options the Rust launcher uses:
         --std=c++17 -arch=compute_XX --fmad=true
  2. ptxas (from the nvidia-cuda-nvcc wheel) assembles the PTX with -v, and the
     per-kernel resource report is parsed: registers, shared memory, stack
     frame, spill stores/loads, local memory.

Fails (exit 1) on any compile/assemble error, any spill, any nonzero stack
frame or local memory, any source with an #include, a contract (`CONTRACT`)
that differs from the kernels the sources define (parsed as the Rust build
parses them, crates/core/build/kernel_signatures.rs), a kernel of the
contract missing from the PTX (`.entry name`), or a kernel whose occupancy
falls below its design: `__launch_bounds__(THREADS, MIN_BLOCKS)` states the
blocks per SM it is designed for, and the registers and shared memory
ptxas reports must allow that many (its register budget is printed).

Usage: check_kernels.py [--kernels DIR] [--json OUT.json] [--site-packages DIR]
"""

import argparse
import ctypes
import glob
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile

ARCHS = (80, 90)

# The launch contract: every kernel the Rust side looks up by name, per file;
# checked against the kernels the sources define (kernel_signatures below).
CONTRACT = {
    "gemm_fp32.cu": ["gemm_fwd_f32", "gemm_dx_f32", "gemm_dw_f32",
                     "gemm_fwd_partial_f32", "gemm_dx_partial_f32"],
    "gemm_tc.cu": [
        "gemm_fwd_tf32", "gemm_dx_tf32", "gemm_dw_tf32",
        "gemm_fwd_bf16", "gemm_dx_bf16", "gemm_dw_bf16",
        "gemm_fwd_partial_tf32", "gemm_dx_partial_tf32",
        "gemm_fwd_partial_bf16", "gemm_dx_partial_bf16",
    ],
    "reduce.cu": ["reduce_splits", "bias_grad", "splitk_bias_act", "splitk_mask", "accumulate_add"],
    "loss.cu": ["bce_logits", "loss_accumulate"],
    "adam.cu": ["adam_step", "step_increment"],
    "data.cu": ["gather_u8", "gather_f32", "gather_u8_dev", "gather_f32_dev", "offset_advance"],
    "lamb.cu": ["lamb_moments", "lamb_trust_ratio", "lamb_apply", "schedule_probe", "cos_pi_probe"],
}


# The kernel signatures, read as crates/core/build/kernel_signatures.rs reads
# them (the Rust build fails on what this rejects): comments blanked, then
# every `extern "C" __global__` followed by `void` and an optional
# `__launch_bounds__(...)` (either order), the name, and its parameters, each
# a pointer (contains `*`) or, after any `const`, `int`, `float` or `double`.
KERNEL = 'extern "C" __global__'
RE_COMMENT = re.compile(r'//[^\n]*|/\*.*?\*/|("(?:\\.|[^"\\])*")', re.S)
RE_SIGNATURE = re.compile(
    re.escape(KERNEL) + r"\s*((?:(?:void\b|__launch_bounds__\s*\([^)]*\))\s*)*)"
    r"([A-Za-z0-9_]+)\s*\(([^)]*)\)")
SCALARS = {"int": "I32", "float": "F32", "double": "F64"}


def blank_comments(src):
    """src with comments replaced by spaces (newlines kept), strings kept."""
    def blank(m):
        return m.group(0) if m.group(1) else re.sub(r"[^\n]", " ", m.group(0))
    return RE_COMMENT.sub(blank, src)


def param_kind(param):
    if "*" in param:
        return "Ptr"
    words = [w for w in param.split() if w != "const"]
    if len(words) == 2 and words[0] in SCALARS:
        return SCALARS[words[0]]
    return None


def kernel_signatures(fname, src):
    """[(name, [kind])] of the file's kernels, and the errors found."""
    code = blank_comments(src)
    found, errors = [], []
    starts = [m.start() for m in re.finditer(re.escape(KERNEL), code)]
    for at in starts:
        m = RE_SIGNATURE.match(code, at)
        if not m or not re.search(r"\bvoid\b", m.group(1)):
            errors.append(f"{fname}: cannot read the kernel signature at "
                          f"`{code[at:at + 80].splitlines()[0]}`")
            continue
        name, plist = m.group(2), m.group(3).strip()
        params = [] if plist in ("", "void") else [p.strip() for p in plist.split(",")]
        kinds = [param_kind(p) for p in params]
        for p, k in zip(params, kinds):
            if k is None:
                errors.append(f"{fname}: kernel {name}: parameter `{p}` is not a pointer, int, "
                              "float or double")
        found.append((name, kinds))
    return found, errors


def contract_differences(parsed):
    """CONTRACT against the kernels parsed from the sources, file by file."""
    errors = []
    for fname in sorted(set(CONTRACT) | set(parsed)):
        want, have = CONTRACT.get(fname, []), parsed.get(fname, [])
        missing = [n for n in want if n not in have]
        extra = [n for n in have if n not in want]
        if missing:
            errors.append(f"{fname}: CONTRACT names {missing}, which the source does not define")
        if extra:
            errors.append(f"{fname}: the source defines {extra}, which CONTRACT does not name")
    return errors


def nvrtc_options(arch):
    return ["--std=c++17", f"-arch=compute_{arch}", "--fmad=true"]


def site_dirs(extra):
    dirs = list(extra)
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p and p not in dirs:
            dirs.append(p)
    for p in sys.path:
        if p.endswith("site-packages") and p not in dirs:
            dirs.append(p)
    return dirs


def find_one(dirs, patterns, what):
    for d in dirs:
        for pat in patterns:
            hits = sorted(glob.glob(os.path.join(d, pat), recursive=True))
            hits = [h for h in hits if os.path.isfile(h)]
            if hits:
                return hits[0]
    sys.exit(f"error: {what} not found under {dirs} (patterns {patterns}); "
             "run .ci/check-kernels.sh, which installs the CUDA wheels")


class Nvrtc:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        L = self.lib
        L.nvrtcGetErrorString.restype = ctypes.c_char_p
        L.nvrtcGetErrorString.argtypes = [ctypes.c_int]
        L.nvrtcVersion.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
        L.nvrtcCreateProgram.argtypes = [
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_char_p,
            ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p)]
        L.nvrtcCompileProgram.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        L.nvrtcGetProgramLogSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        L.nvrtcGetProgramLog.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        L.nvrtcGetPTXSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        L.nvrtcGetPTX.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        L.nvrtcDestroyProgram.argtypes = [ctypes.POINTER(ctypes.c_void_p)]

    def version(self):
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return major.value, minor.value

    def _check(self, rc, what):
        if rc != 0:
            raise RuntimeError(f"{what}: {self.lib.nvrtcGetErrorString(rc).decode()}")

    def compile(self, source, name, options):
        """Returns (ok, ptx, log)."""
        prog = ctypes.c_void_p()
        self._check(self.lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(),
                                                0, None, None), "nvrtcCreateProgram")
        try:
            opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
            rc = self.lib.nvrtcCompileProgram(prog, len(options), opts)
            size = ctypes.c_size_t()
            self._check(self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "log size")
            buf = ctypes.create_string_buffer(size.value)
            self._check(self.lib.nvrtcGetProgramLog(prog, buf), "log")
            log = buf.value.decode(errors="replace").strip()
            if rc != 0:
                return False, None, f"{self.lib.nvrtcGetErrorString(rc).decode()}\n{log}"
            self._check(self.lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), "ptx size")
            buf = ctypes.create_string_buffer(size.value)
            self._check(self.lib.nvrtcGetPTX(prog, buf), "ptx")
            return True, buf.value.decode(), log
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


RE_FUNC = re.compile(r"Function properties for (\S+)")
RE_COMPILING = re.compile(r"Compiling entry function '([^']+)'")
RE_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
RE_USED = re.compile(r"Used (\d+) registers")
RE_SMEM = re.compile(r"(\d+) bytes smem")
RE_LMEM = re.compile(r"(\d+) bytes lmem")


def parse_ptxas(log):
    """Per-entry resources from `ptxas -v` output."""
    kernels = {}
    cur = None
    for line in log.splitlines():
        m = RE_COMPILING.search(line)
        if m:
            cur = kernels.setdefault(m.group(1), {})
            continue
        m = RE_FUNC.search(line)
        if m:
            cur = kernels.setdefault(m.group(1), {})
            continue
        if cur is None:
            continue
        m = RE_FRAME.search(line)
        if m:
            cur["stack"], cur["spill_st"], cur["spill_ld"] = map(int, m.groups())
        m = RE_USED.search(line)
        if m:
            cur["regs"] = int(m.group(1))
            s = RE_SMEM.search(line)
            cur["smem"] = int(s.group(1)) if s else 0
            l = RE_LMEM.search(line)
            cur["lmem"] = int(l.group(1)) if l else 0
    return kernels


# Per-SM limits of the two targets (CUDA occupancy rules: registers are
# allocated per warp in units of 256, 1 KB of shared memory is reserved per
# block).
SM_LIMITS = {
    80: {"regs": 65536, "smem": 167936, "threads": 2048, "blocks": 32, "warps": 64},
    90: {"regs": 65536, "smem": 233472, "threads": 2048, "blocks": 32, "warps": 64},
}
RE_BOUNDS = re.compile(
    r"__launch_bounds__\(\s*([A-Za-z0-9_]+)\s*(?:,\s*([A-Za-z0-9_]+)\s*)?\)\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
RE_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(\d+)\b", re.M)


def launch_bounds(src):
    """kernel -> (threads, min_blocks or None) from its __launch_bounds__."""
    defines = dict(RE_DEFINE.findall(src))
    value = lambda t: int(defines.get(t, t)) if t is not None else None
    return {name: (value(t), value(b)) for t, b, name in RE_BOUNDS.findall(src)}


def occupancy(arch, threads, regs, smem):
    """Blocks per SM the resources allow, and the limiting resource."""
    lim = SM_LIMITS[arch]
    warps = -(-threads // 32)
    regs_per_warp = -(-regs * 32 // 256) * 256
    by = {
        "registers": min(lim["regs"] // max(regs_per_warp, 1), lim["warps"]) // warps,
        "threads": lim["threads"] // threads,
        "blocks": lim["blocks"],
        "shared memory": lim["smem"] // (smem + 1024) if smem else lim["blocks"],
    }
    limit = min(by, key=by.get)
    return by[limit], limit


def register_budget(arch, threads, min_blocks):
    """The most registers per thread that still allow min_blocks per SM."""
    warps = -(-threads // 32)
    return SM_LIMITS[arch]["regs"] // (min_blocks * warps * 256) * 8


def entries(ptx):
    return re.findall(r"\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", ptx)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", default=os.path.join(root, "kernels"))
    ap.add_argument("--json", help="write the resource table here as JSON")
    ap.add_argument("--site-packages", action="append", default=[],
                    help="extra directory to search for the nvidia wheels")
    ap.add_argument("--keep", help="directory to keep the PTX and ptxas logs in")
    args = ap.parse_args()

    dirs = site_dirs(args.site_packages)
    nvrtc_path = find_one(dirs, ["nvidia/cu*/lib/libnvrtc.so*", "nvidia/cuda_nvrtc/lib/libnvrtc.so*",
                                 "nvidia/**/libnvrtc.so*"], "libnvrtc")
    ptxas = find_one(dirs, ["nvidia/cu*/bin/ptxas", "nvidia/cuda_nvcc/bin/ptxas", "nvidia/**/bin/ptxas"],
                     "ptxas")
    # libnvrtc dlopen()s libnvrtc-builtins by soname at compile time; the wheel's
    # lib folder is not on the loader path, so load it first (RTLD_GLOBAL).
    libdir = os.path.dirname(nvrtc_path)
    for b in sorted(glob.glob(os.path.join(libdir, "libnvrtc-builtins.so*"))):
        ctypes.CDLL(b, mode=ctypes.RTLD_GLOBAL)
    nvrtc = Nvrtc(nvrtc_path)
    major, minor = nvrtc.version()
    print(f"nvrtc: {nvrtc_path} (version {major}.{minor})")
    pv = subprocess.run([ptxas, "--version"], capture_output=True, text=True)
    print(f"ptxas: {ptxas} ({pv.stdout.strip().splitlines()[-1] if pv.stdout.strip() else '?'})")

    sources = sorted(glob.glob(os.path.join(args.kernels, "*.cu")))
    if not sources:
        sys.exit(f"error: no kernels/*.cu under {args.kernels}")
    errors = []
    rows = []
    seen = {}
    keep = args.keep or tempfile.mkdtemp(prefix="dae-kernels-")
    os.makedirs(keep, exist_ok=True)

    parsed = {}
    for path in sources:
        fname = os.path.basename(path)
        signatures, errs = kernel_signatures(fname, open(path, encoding="utf-8").read())
        parsed[fname] = [name for name, _ in signatures]
        errors.extend(errs)
    errors.extend(contract_differences(parsed))

    for path in sources:
        fname = os.path.basename(path)
        src = open(path, encoding="utf-8").read()
        bounds = launch_bounds(src)
        if re.search(r"^\s*#\s*include\b", src, re.M):
            errors.append(f"{fname}: contains #include (kernels must be self-contained)")
        for arch in ARCHS:
            opts = nvrtc_options(arch)
            ok, ptx, log = nvrtc.compile(src, fname, opts)
            if not ok:
                errors.append(f"{fname} compute_{arch}: NVRTC failed")
                print(f"--- NVRTC log {fname} compute_{arch} ({' '.join(opts)}):\n{log}\n---")
                continue
            if log:
                print(f"--- NVRTC log {fname} compute_{arch}:\n{log}\n---")
            stem = f"{os.path.splitext(fname)[0]}.sm_{arch}"
            ptx_path = os.path.join(keep, stem + ".ptx")
            with open(ptx_path, "w") as f:
                f.write(ptx)
            names = entries(ptx)
            for n in names:
                seen.setdefault(n, set()).add((fname, arch))
            cubin = os.path.join(keep, stem + ".cubin")
            r = subprocess.run([ptxas, f"-arch=sm_{arch}", "-v", "-warn-spills", "-warn-lmem-usage",
                                ptx_path, "-o", cubin], capture_output=True, text=True)
            plog = r.stdout + r.stderr
            with open(os.path.join(keep, stem + ".ptxas.log"), "w") as f:
                f.write(plog)
            if r.returncode != 0:
                errors.append(f"{fname} sm_{arch}: ptxas failed")
                print(f"--- ptxas log {fname} sm_{arch}:\n{plog}\n---")
                continue
            for line in plog.splitlines():
                if "warning" in line.lower():
                    print(f"ptxas {fname} sm_{arch}: {line.strip()}")
            res = parse_ptxas(plog)
            for n in names:
                k = res.get(n)
                if k is None or "regs" not in k:
                    errors.append(f"{fname} sm_{arch} {n}: no resource report from ptxas")
                    continue
                row = {"file": fname, "kernel": n, "arch": f"sm_{arch}", "regs": k["regs"],
                       "smem": k.get("smem", 0), "stack": k.get("stack", 0),
                       "spill_stores": k.get("spill_st", 0), "spill_loads": k.get("spill_ld", 0),
                       "lmem": k.get("lmem", 0)}
                threads, design = bounds.get(n, (None, None))
                if threads:
                    blocks, limit = occupancy(arch, threads, row["regs"], row["smem"])
                    row.update({"threads": threads, "design_blocks": design,
                                "blocks_per_sm": blocks, "limited_by": limit})
                    if design:
                        row["register_budget"] = register_budget(arch, threads, design)
                        if blocks < design:
                            errors.append(f"{fname} sm_{arch} {n}: {blocks} blocks per SM ({limit}: "
                                          f"{row['regs']} registers, {row['smem']} B smem), below its "
                                          f"design of {design} (register budget {row['register_budget']})")
                    elif n in CONTRACT.get(fname, []) and threads > 1:
                        errors.append(f"{fname} {n}: __launch_bounds__ states no minimum blocks per SM")
                rows.append(row)
                if row["spill_stores"] or row["spill_loads"]:
                    errors.append(f"{fname} sm_{arch} {n}: register spills "
                                  f"({row['spill_stores']} B stores, {row['spill_loads']} B loads)")
                if row["stack"] or row["lmem"]:
                    errors.append(f"{fname} sm_{arch} {n}: stack frame {row['stack']} B, lmem {row['lmem']} B")

    for fname, names in CONTRACT.items():
        for n in names:
            for arch in ARCHS:
                if (fname, arch) not in seen.get(n, set()):
                    errors.append(f"contract kernel {n} missing from {fname} (compute_{arch})")

    hdr = ("file", "kernel", "arch", "regs", "budget", "smem", "blocks/SM", "design", "stack", "spills")
    table = [(r["file"], r["kernel"], r["arch"], str(r["regs"]), str(r.get("register_budget", "-")),
              str(r["smem"]), f"{r.get('blocks_per_sm', '-')} ({r.get('limited_by', '-')})",
              str(r.get("design_blocks") or "-"), str(r["stack"]),
              f"{r['spill_stores']}/{r['spill_loads']}") for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(hdr)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(hdr, widths)))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)))
    print(f"\n(smem: static bytes per block; spills: store/load bytes; artifacts in {keep})")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"nvrtc_version": f"{major}.{minor}", "options": nvrtc_options("XX"),
                       "kernels": rows, "errors": errors}, f, indent=2)
        print(f"wrote {args.json}")

    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)")
        for e in errors:
            print(f"  - {e}")
        return 1
    print(f"\nkernel check: {len(rows)} kernel builds OK, no spills, no stack frame, "
          "every kernel at its designed blocks per SM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
