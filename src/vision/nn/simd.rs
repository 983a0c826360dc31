//! Run-time instruction-set dispatch for the hand-written loops.
//!
//! A shipped binary must run on any x86-64 (baseline SSE2) and on aarch64, yet the inner loops should use
//! AVX2/FMA or AVX-512 where the CPU has them. [`multiversion!`] compiles one `#[inline(always)]` body
//! several times under `#[target_feature]` and picks a version per call with `is_x86_feature_detected!`
//! (cached by std, a load and a branch). Bodies take a `const FMA: bool` so they use fused multiply-add
//! only where it is a single instruction (it is a slow library call on baseline x86-64).

/// `a * b + c`, fused when `FMA` (the caller was compiled with FMA available).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Whether the portable fallback may fuse: aarch64 always has FMA.
pub(crate) const BASE_FMA: bool = cfg!(target_arch = "aarch64");

/// Defines `fn $name(args)` that runs `$body::<FMA>(args)` compiled for the best available instruction set.
///
/// `$body` must be an `#[inline(always)] fn<const FMA: bool>(same args)`.
macro_rules! multiversion {
    ($vis:vis fn $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features v4 was compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features v3 was compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            $body::<{ $crate::vision::nn::simd::BASE_FMA }>($($arg),*)
        }
    };
}

pub(crate) use multiversion;
