//! dae's own run-time compile path (cudarc's NVRTC bindings, our options,
//! the disk cache) on every kernel, for sm_80 and sm_90. NVRTC needs no GPU
//! but the library: the test is ignored by a plain `cargo test` (the
//! runner counts it as ignored, not passed); `.ci/run` puts the
//! nvidia-cuda-nvrtc wheel's libnvrtc.so.13 on LD_LIBRARY_PATH and runs it
//! with `--ignored`, where a missing library fails it. The output is a
//! CUBIN for each architecture, so the card runs exactly the machine code
//! whose registers CI reports.

use dae_core::cuda::{compile, kernel_sources, nvrtc_version, CompileOptions};
use dae_core::ops::signature::KERNELS;

/// Whether `name` is a symbol of the ELF image (its string table holds it,
/// NUL-terminated).
fn has_symbol(cubin: &[u8], name: &str) -> bool {
    let needle = format!("\0{name}\0");
    cubin.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
#[ignore = "needs libnvrtc.so.13 on the library path; .ci/run runs it with --ignored"]
fn every_kernel_compiles_through_nvrtc_and_the_cache() {
    // SAFETY: only tries to dlopen the library.
    assert!(
        unsafe { cudarc::nvrtc::sys::is_culib_present() },
        "no NVRTC library: put libnvrtc.so.13 on LD_LIBRARY_PATH"
    );
    let version = nvrtc_version().unwrap();
    println!("NVRTC {}.{}", version.0, version.1);
    assert!(
        version.0 >= 13,
        "built for CUDA 13's NVRTC, found {version:?}"
    );
    let cache = tempfile::tempdir().unwrap();
    let plain = CompileOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        lineinfo: false,
    };
    let lines = CompileOptions {
        lineinfo: true,
        ..plain.clone()
    };
    for cc in [(8, 0), (9, 0)] {
        for (file, src) in kernel_sources() {
            let cubin = compile(file, src, cc, &plain).unwrap();
            // Machine code for the card itself, not PTX for the driver to JIT.
            assert!(
                cubin.starts_with(b"\x7fELF"),
                "{file} for {cc:?} is not a CUBIN"
            );
        }
        // Every kernel is in its own file's CUBIN, where Kernels::load
        // looks it up.
        for k in KERNELS {
            let (file, src) = kernel_sources().iter().find(|(f, _)| *f == k.file).unwrap();
            let cubin = compile(file, src, cc, &plain).unwrap();
            assert!(
                has_symbol(&cubin, k.name),
                "{} not in the CUBIN of {file} for {cc:?}",
                k.name
            );
        }
    }
    let cached = |ext: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect()
    };
    // Two architectures × every file, each cached once under its own key.
    assert_eq!(cached("cubin").len(), 2 * kernel_sources().len());
    // A second compile is served from the cache (the file's bytes come back).
    let (file, src) = kernel_sources()[0];
    let stem = file.trim_end_matches(".cu");
    let path = cached("cubin")
        .into_iter()
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{stem}-sm_90-"))
        })
        .unwrap();
    let mut marked = std::fs::read(&path).unwrap();
    marked.extend_from_slice(b"cache");
    std::fs::write(&path, &marked).unwrap();
    assert_eq!(compile(file, src, (9, 0), &plain).unwrap(), marked);
    // A damaged cache file is compiled afresh, not handed to the driver.
    std::fs::write(&path, "not an ELF").unwrap();
    assert!(compile(file, src, (9, 0), &plain)
        .unwrap()
        .starts_with(b"\x7fELF"));
    // A changed source is a different key: compiled afresh, not the stale file.
    let changed = format!("{src}\n// changed\n");
    let fresh = compile(file, &changed, (9, 0), &plain).unwrap();
    assert!(fresh.starts_with(b"\x7fELF"));
    // -lineinfo is part of the key and adds the source lines.
    let before = cached("cubin").len();
    let with_lines = compile(file, src, (9, 0), &lines).unwrap();
    assert_eq!(cached("cubin").len(), before + 1);
    assert!(with_lines.len() > compile(file, src, (9, 0), &plain).unwrap().len());
}
