//! Generates `$OUT_DIR/kernels.rs` from kernels/*.cu: the sources NVRTC
//! compiles (`KERNEL_SOURCES`) and every kernel's signature (`KERNELS`),
//! parsed by build/kernel_signatures.rs, so launches are checked against the
//! .cu files themselves (`ops::signature`). A kernel the parser cannot
//! describe fails the build, naming the file, kernel and parameter.

#[path = "build/kernel_signatures.rs"]
mod kernel_signatures;

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let kernels = manifest.join("../../kernels");
    println!("cargo:rerun-if-changed={}", kernels.display());
    println!("cargo:rerun-if-changed=build");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&kernels)
        .unwrap_or_else(|e| panic!("{}: {e}", kernels.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    files.sort();

    let mut sources = String::new();
    let mut table = String::new();
    let mut seen = std::collections::HashMap::new();
    for path in &files {
        let file = path.file_name().unwrap().to_str().unwrap();
        let src =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let absolute = path.canonicalize().unwrap();
        writeln!(
            sources,
            "    ({file:?}, include_str!({:?})),",
            absolute.to_str().unwrap()
        )
        .unwrap();
        let signatures = kernel_signatures::parse(&format!("kernels/{file}"), &src)
            .unwrap_or_else(|e| panic!("{e}"));
        for s in signatures {
            if let Some(other) = seen.insert(s.name.clone(), file.to_string()) {
                panic!(
                    "kernel {} is defined in kernels/{other} and kernels/{file}",
                    s.name
                );
            }
            let args: Vec<String> = s
                .args
                .iter()
                .map(|k| format!("ArgKind::{}", k.name()))
                .collect();
            writeln!(
                table,
                "    KernelSignature {{ name: {:?}, file: {file:?}, args: &[{}], test_only: {} }},",
                s.name,
                args.join(", "),
                s.test_only
            )
            .unwrap();
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("kernels.rs");
    let text = format!(
        "/// (file name, source) of every kernels/*.cu, by file name.\n\
         pub static KERNEL_SOURCES: &[(&str, &str)] = &[\n{sources}];\n\n\
         /// Every `extern \"C\" __global__` kernel of kernels/*.cu, file by file.\n\
         pub static KERNELS: &[KernelSignature] = &[\n{table}];\n"
    );
    if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&out, text).unwrap();
    }
}
