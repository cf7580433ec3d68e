//! Running our elementwise loops with AVX-512 where the CPU has it, while
//! the binary stays portable (it is built once and carried to GPU nodes).

/// Defines `$name` as a call of `$inner` that runs a copy compiled with
/// AVX-512 (16-lane vectors) when the CPU supports it, and the baseline
/// build otherwise. Without fast-math flags no FMA contraction happens, so
/// both copies compute the same bits.
macro_rules! avx512_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $inner:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                    $inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}

pub(crate) use avx512_dispatch;

/// Below this many elements an elementwise pass runs on the calling thread:
/// waking the pool costs more than the work.
pub(crate) const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;
