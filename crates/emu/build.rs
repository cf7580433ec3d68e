//! Compiles every kernels/*.cu as host C++ against csrc/cuda_host.h, each
//! in its own translation unit and namespace (helpers may share names
//! across files, as NVRTC compiles them apart), plus one trampoline per
//! `extern "C" __global__` kernel and the table the runtime looks names up in.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// The signature parser crates/core's build script uses too.
#[path = "../core/build/kernel_signatures.rs"]
#[allow(dead_code)]
mod kernel_signatures;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let kernels = manifest.join("../../kernels");
    let csrc = manifest.join("csrc");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", kernels.display());
    println!("cargo:rerun-if-changed={}", csrc.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&kernels)
        .expect("kernels/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    files.sort();
    // Kernels that exist only for the emulator's own tests.
    files.push(csrc.join("test_kernels/emu_tests.cu"));

    let mut base = cc::Build::new();
    base.cpp(true)
        .std("c++17")
        .opt_level(2)
        .include(&csrc)
        .flag("-ffp-contract=off")
        .flag("-Wno-unknown-pragmas")
        // Misaligned vector accesses (a float4 through a 4-byte aligned
        // address faults on the GPU), out-of-bounds indices into fixed-size
        // arrays (shared tiles, register fragments), int overflow in index
        // arithmetic: abort with a message instead of passing silently.
        .flag("-fsanitize=alignment,bounds,signed-integer-overflow,shift")
        .flag("-fno-sanitize-recover=all");
    // The runtime itself is not instrumented: it defines the callbacks below.
    let runtime = base
        .clone()
        .file(csrc.join("runtime.cpp"))
        .compile_intermediates();
    let mut build = base;
    // The kernels get GCC's ThreadSanitizer instrumentation (a call before
    // every load and store with its address and size) but not libtsan:
    // runtime.cpp defines the __tsan_* callbacks, which record each
    // shared-memory access for the race detector (see runtime.cpp).
    build.flag("-fsanitize=thread");
    // Keep a float4 / float2 copy one 16- / 8-byte access, as the GPU's
    // LDS.128 / STG.64 are (scalar replacement would split it into 4-byte
    // accesses, which the traffic counters would count as separate requests).
    build.flag("-fno-tree-sra");
    for obj in runtime {
        build.object(obj);
    }

    let mut table = String::from("#include <cstddef>\n");
    let mut entries = String::new();
    let mut count = 0;
    for file in &files {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let src = std::fs::read_to_string(file).unwrap();
        let names: Vec<String> = kernel_signatures::parse(&file.display().to_string(), &src)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|k| k.name)
            .collect();
        let mut tu = format!(
            "#include \"cuda_host.h\"\nnamespace dae_kernels_{stem} {{\n#include \"{}\"\n}}\n",
            file.display()
        );
        for name in &names {
            let f = format!("&dae_kernels_{stem}::{name}");
            writeln!(
                tu,
                "extern \"C\" void dae_emu_trampoline_{name}(void** a) {{ dae_emu::call({f}, a); }}\n\
                 using dae_emu_params_{name} = decltype(dae_emu::param_codes({f}));\n\
                 extern \"C\" const unsigned dae_emu_param_count_{name} = dae_emu_params_{name}::count;\n\
                 extern \"C\" const unsigned* const dae_emu_param_codes_{name} = dae_emu_params_{name}::codes;"
            )
            .unwrap();
            writeln!(
                table,
                "extern \"C\" void dae_emu_trampoline_{name}(void**);\n\
                 extern \"C\" const unsigned dae_emu_param_count_{name};\n\
                 extern \"C\" const unsigned* const dae_emu_param_codes_{name};"
            )
            .unwrap();
            writeln!(
                entries,
                "    {{\"{name}\", &dae_emu_trampoline_{name}, &dae_emu_param_count_{name}, &dae_emu_param_codes_{name}}},"
            )
            .unwrap();
            count += 1;
        }
        let path = out.join(format!("kernel_{stem}.cpp"));
        write_if_changed(&path, &tu);
        build.file(path);
    }
    write!(
        table,
        "struct DaeEmuKernel {{ const char* name; void (*trampoline)(void**); \
         const unsigned* param_count; const unsigned* const* param_codes; }};\n\
         extern \"C\" const DaeEmuKernel dae_emu_kernels[] = {{\n{entries}}};\n\
         extern \"C\" const size_t dae_emu_kernel_count = {count};\n"
    )
    .unwrap();
    let path = out.join("kernel_table.cpp");
    write_if_changed(&path, &table);
    build.file(path);
    build.compile("dae_emu_kernels");
    // The sanitizer runtime the flags above need.
    println!("cargo:rustc-link-lib=ubsan");
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}
