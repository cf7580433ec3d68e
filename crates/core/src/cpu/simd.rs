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
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `narrow` was compiled for.
                    return unsafe { narrow($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}

pub(crate) use simd_dispatch;

/// Below this many elements an elementwise pass runs on the calling thread:
/// waking the pool costs more than the work.
pub(crate) const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;
