//! dae's own run-time compile path (cudarc's NVRTC bindings, our options,
//! the disk cache) on every kernel, for sm_80 and sm_90. NVRTC needs no GPU
//! but the library: the test is ignored by a plain `cargo test` (the
//! runner counts it as ignored, not passed); `.ci/run` puts the
//! nvidia-cuda-nvrtc wheel's libnvrtc.so.13 on LD_LIBRARY_PATH and runs it
//! with `--ignored`, where a missing library fails it.

use dae_core::cuda::plan::kernel_names;
use dae_core::cuda::{compile, kernel_sources, nvrtc_version};

/// The names after `.entry` in a PTX module.
fn entries(ptx: &str) -> Vec<String> {
    ptx.lines()
        .filter_map(|l| l.split(".entry ").nth(1))
        .map(|rest| rest.trim_end_matches(['(', ' ']).to_string())
        .collect()
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
    // The only test in this binary: nothing else reads the variable meanwhile.
    std::env::set_var("DAE_KERNEL_CACHE", cache.path());
    for cc in [(8, 0), (9, 0)] {
        let mut found = Vec::new();
        for (file, src) in kernel_sources() {
            let ptx = compile(file, src, cc).unwrap().to_src();
            assert!(
                ptx.contains(&format!(".target sm_{}{}", cc.0, cc.1)),
                "{file} for {cc:?}"
            );
            found.extend(entries(&ptx));
        }
        for name in kernel_names() {
            assert!(
                found.iter().any(|f| f == name),
                "{name} not in the PTX for {cc:?}"
            );
        }
    }
    // Two architectures × every file, each cached once under its own key.
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ptx"))
        .collect();
    assert_eq!(cached.len(), 2 * kernel_sources().len(), "{cached:?}");
    // A second compile is served from the cache (the file's text comes back).
    let (file, src) = kernel_sources()[0];
    let stem = file.trim_end_matches(".cu");
    let path = cached
        .iter()
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{stem}-compute_90-"))
        })
        .unwrap();
    std::fs::write(path, "// from the cache\n").unwrap();
    assert_eq!(
        compile(file, src, (9, 0)).unwrap().to_src(),
        "// from the cache\n"
    );
    // A changed source is a different key: compiled afresh, not the stale file.
    let changed = format!("{src}\n// changed\n");
    assert!(compile(file, &changed, (9, 0))
        .unwrap()
        .to_src()
        .contains(".entry"));
}
