//! Running our elementwise loops with AVX-512 where the CPU has it, while
//! the binary stays portable (it is built once and carried to GPU nodes).

/// Defines `$name` as a call of `$inner` that runs a copy compiled with
/// AVX-512 (16-lane vectors) when the CPU supports it, else one compiled
/// with AVX2 and FMA (8 lanes), else the baseline build. Nothing is
/// contracted into an FMA behind the code's back (no fast-math), and an
/// explicit `mul_add` is one exact rounding on every path (the baseline
/// calls libm's `fmaf`), so all three copies compute the same bits.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $inner:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                    $inner($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn narrow($($arg: $ty),*) $(-> $ret)? {
                    $inner($($arg),*)
                }
                match $crate::cpu::simd_level() {
                    // SAFETY: the CPU has the features `wide` was compiled for.
                    "avx512" => return unsafe { wide($($arg),*) },
                    // SAFETY: the CPU has the features `narrow` was compiled for.
                    "avx2+fma" => return unsafe { narrow($($arg),*) },
                    _ => {}
                }
            }
            $inner($($arg),*)
        }
    };
}

pub(crate) use simd_dispatch;

/// The copy `simd_dispatch!` runs on this CPU: "avx512", "avx2+fma" or
/// "baseline" (the dispatch itself matches on it; named beside CPU
/// timings, since it sets their ceiling).
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2+fma";
        }
    }
    "baseline"
}

/// The CPU's model name as the OS reports it (Linux's /proc/cpuinfo), or
/// "unknown".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| model_name(&info))
        .unwrap_or_else(|| "unknown".to_string())
}

fn model_name(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map(|(_, name)| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

/// Below this many elements an elementwise pass runs on the calling thread:
/// waking the pool costs more than the work.
pub(crate) const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_is_the_first_model_name_line() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\nmodel name\t: other\n";
        assert_eq!(model_name(info).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(model_name("model\t\t: 1\n"), None);
        assert_eq!(model_name("model name\t:   \n"), None);
    }

    #[test]
    fn simd_level_matches_the_cpu_flags() {
        let level = simd_level();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            level == "avx512",
            std::arch::is_x86_feature_detected!("avx512f")
        );
        assert!(["avx512", "avx2+fma", "baseline"].contains(&level));
    }
}
