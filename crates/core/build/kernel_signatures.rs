//! The one parser of kernels/*.cu signatures: every
//! `extern "C" __global__ [__launch_bounds__(...)] void name(params)` as its
//! name and argument kinds. Shared by crates/core/build.rs (which generates
//! the `KERNELS` table launches are checked against), crates/emu/build.rs
//! (which emits a trampoline per kernel) and crates/core's tests (the
//! README's signatures), each through `#[path]`; tools/check_kernels.py
//! mirrors it.
//!
//! A parameter containing `*` is a pointer; otherwise, after any `const`,
//! it is `int`, `float` or `double`: anything else is an error naming the
//! file, kernel and parameter, so a kernel the launch layer cannot describe
//! never builds. A kernel whose preceding line is `// test-only` (the
//! `TEST_ONLY` marker) exists only for tests; no op family launches it.

/// How a kernel parameter is passed (`dae_core::ops::Arg`'s variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ptr,
    I32,
    F32,
    F64,
}

impl Kind {
    /// The variant's name (`ArgKind::Ptr` in generated code).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ptr => "Ptr",
            Kind::I32 => "I32",
            Kind::F32 => "F32",
            Kind::F64 => "F64",
        }
    }
}

/// One `extern "C" __global__` function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub args: Vec<Kind>,
    pub test_only: bool,
}

/// The comment line that marks the next kernel as test-only.
pub const TEST_ONLY: &str = "// test-only";

const KERNEL: &str = "extern \"C\" __global__";

/// Every kernel of `src` (the file `file`, as errors name it), in order.
pub fn parse(file: &str, src: &str) -> Result<Vec<Signature>, String> {
    let code = blank_comments(src);
    let mut kernels = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(KERNEL) {
        let start = from + at;
        let mut rest = code[start + KERNEL.len()..].trim_start();
        // `void` and `__launch_bounds__(...)`, in either order.
        let mut void = false;
        loop {
            if let Some(r) = word(rest, "void") {
                (void, rest) = (true, r.trim_start());
            } else if let Some(bounds) = word(rest, "__launch_bounds__") {
                let close = bounds.find(')').ok_or_else(|| {
                    format!("{file}: __launch_bounds__ without a closing parenthesis")
                })?;
                rest = bounds[close + 1..].trim_start();
            } else {
                break;
            }
        }
        if !void {
            return Err(format!(
                "{file}: a kernel that is not declared `void` at `{}`",
                rest.lines().next().unwrap_or("")
            ));
        }
        let open = rest
            .find('(')
            .ok_or_else(|| format!("{file}: a kernel without a parameter list"))?;
        let name = rest[..open].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{file}: cannot read the kernel name `{name}`"));
        }
        let close = rest[open..]
            .find(')')
            .ok_or_else(|| format!("{file}: {name}'s parameter list is not closed"))?;
        let args = params(&rest[open + 1..open + close])
            .map_err(|why| format!("{file}: kernel {name}: {why}"))?;
        kernels.push(Signature {
            name: name.to_string(),
            args,
            test_only: preceding_line(src, start).trim() == TEST_ONLY,
        });
        from = start + KERNEL.len();
    }
    Ok(kernels)
}

/// `text` after its leading word `w`, if it starts with that word.
fn word<'a>(text: &'a str, w: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(w)?;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    (!rest.starts_with(ident)).then_some(rest)
}

/// The kinds of a comma-separated C parameter list (empty or `void`: none).
pub fn params(list: &str) -> Result<Vec<Kind>, String> {
    let list = list.trim();
    if list.is_empty() || list == "void" {
        return Ok(Vec::new());
    }
    list.split(',').map(|p| kind(p.trim())).collect()
}

/// The kind of one declaration (`const float* __restrict__ X`, `int n`).
fn kind(param: &str) -> Result<Kind, String> {
    if param.contains('*') {
        return Ok(Kind::Ptr);
    }
    let words: Vec<&str> = param.split_whitespace().filter(|w| *w != "const").collect();
    match words.as_slice() {
        ["int", _] => Ok(Kind::I32),
        ["float", _] => Ok(Kind::F32),
        ["double", _] => Ok(Kind::F64),
        _ => Err(format!(
            "parameter `{param}` is not a pointer, int, float or double"
        )),
    }
}

/// `src` with every comment replaced by spaces (newlines kept), so offsets
/// into it are offsets into `src`.
fn blank_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'/', Some(b'/')) => {
                while i < b.len() && b[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                for o in &mut out[i..end] {
                    if *o != b'\n' {
                        *o = b' ';
                    }
                }
                i = end;
            }
            (b'"', _) => {
                // A string literal (`extern "C"`): skip it whole.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes were replaced, by ASCII: still UTF-8.
    String::from_utf8(out).expect("comments blanked on character boundaries")
}

/// The line before the one holding byte `at`.
fn preceding_line(src: &str, at: usize) -> &str {
    let line_start = src[..at].rfind('\n').map_or(0, |n| n + 1);
    if line_start == 0 {
        return "";
    }
    let before = &src[..line_start - 1];
    &before[before.rfind('\n').map_or(0, |n| n + 1)..]
}

// Run by `cargo test -p dae-core`, which includes this file in its tests.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_kinds_around_bounds_and_comments() {
        let src = "// extern \"C\" __global__ void in_a_comment(int x) {}\n\
                   /* extern \"C\" __global__ void nor_here(int x) */\n\
                   extern \"C\" __global__ void __launch_bounds__(T, 4)\n\
                   first(const float* __restrict__ a, unsigned int* b, int n, // n rows\n\
                         const float s, double w) {}\n\
                   // test-only\n\
                   extern \"C\" __global__ __launch_bounds__(256) void second(void) {}\n";
        let k = parse("t.cu", src).unwrap();
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(k[0].name, "first");
        use Kind::*;
        assert_eq!(k[0].args, vec![Ptr, Ptr, I32, F32, F64]);
        assert!(!k[0].test_only);
        assert_eq!((k[1].name.as_str(), k[1].args.len()), ("second", 0));
        assert!(k[1].test_only);
    }

    #[test]
    fn a_parameter_it_cannot_describe_names_file_kernel_and_parameter() {
        for bad in ["unsigned n", "size_t n", "float4 v", "int"] {
            let src = format!("extern \"C\" __global__ void k(float* p, {bad}) {{}}");
            let e = parse("kernels/x.cu", &src).unwrap_err();
            assert!(
                e.contains("kernels/x.cu") && e.contains("kernel k") && e.contains(bad),
                "{e}"
            );
        }
        let e = parse("x.cu", "extern \"C\" __global__ int k(int n) {}").unwrap_err();
        assert!(e.contains("x.cu") && e.contains("void"), "{e}");
    }
}
