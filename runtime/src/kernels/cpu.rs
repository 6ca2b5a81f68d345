//! CPU feature dispatch for the fast kernels.
//!
//! The fast kernels are plain portable Rust written so that LLVM vectorizes
//! them. On AArch64 that already means NEON (part of the base ISA). On x86-64
//! the base ISA stops at SSE2, which lacks the instructions the int8 kernels
//! want most (`pmaddwd` on 256-bit registers, signed 32x32->64 multiplies for
//! requantization, `pmaxsb`), so [`multiversion!`] compiles a kernel's body a
//! second time with AVX2 enabled, and a third with AVX-512 (512-bit vectors,
//! masked tails, `vpmullq`), and picks the best copy at run time. All copies are
//! the same source, and integer arithmetic does not depend on vector width, so
//! the results are identical bit for bit; the unit tests also run the portable
//! copy directly against the reference.

/// True when AVX2 code may run: detected at run time with `std`, otherwise
/// decided at compile time (`-C target-feature=+avx2`).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx2")
    }
}

/// True when AVX-512 VNNI (`VPDPWSSD` on 512-bit registers) may run: detected at
/// run time with `std`, otherwise decided at compile time.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512vnni() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512vnni"
        ))
    }
}

/// True when AVX-512 VBMI (`VPERMI2B`, with AVX-512F and BW) may run: detected
/// at run time with `std`, otherwise decided at compile time.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512vbmi() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vbmi")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vbmi"
        ))
    }
}

/// True when AVX-VNNI (the VEX `VPDPWSSD` on 256-bit registers, without
/// AVX-512) may run: detected at run time with `std`, otherwise decided at
/// compile time.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avxvnni() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "avxvnni"))
    }
}

/// True when F16C (`VCVTPH2PS`) may run: detected at run time with `std`,
/// otherwise decided at compile time.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_f16c() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "f16c")
    }
}

/// True when the AVX-512 tier of [`multiversion!`] may run (AVX-512 F, BW, VL and
/// DQ, with AVX2 and FMA): detected at run time with `std`, otherwise decided
/// at compile time.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512() -> bool {
    #[cfg(feature = "std")]
    {
        has_avx2()
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(
            target_feature = "avx2",
            target_feature = "fma",
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vl",
            target_feature = "avx512dq"
        ))
    }
}

/// Defines `fn $name(args)` that runs `$body(args)`, compiled with AVX-512 (F,
/// BW, VL, DQ) or AVX2 when the CPU supports them (x86-64 only), and as
/// portable code otherwise.
///
/// `$body` should be `#[inline(always)]`, as should everything hot it calls, so
/// that the AVX2 copy is AVX2 code throughout.
/// A generic parameter list with bounds (`<W: FloatWeight>`) may follow `$name`.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident $(<$($g:ident: $bound:path),+>)? ($($arg:ident: $ty:ty),* $(,)?) => $body:ident;
    ) => {
        $(#[$meta])*
        // A kernel entry point, called once per op: kept out of line so that
        // its code does not depend on the op function that calls it.
        #[inline(never)]
        $vis fn $name $(<$($g: $bound),+>)? ($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::cpu::has_avx512() {
                #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512dq")]
                fn avx512 $(<$($g: $bound),+>)? ($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: `has_avx512` confirmed every feature this copy enables,
                // the only requirement of a `target_feature` fn.
                return unsafe { avx512($($arg),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::cpu::has_avx2() {
                #[target_feature(enable = "avx2")]
                fn avx2 $(<$($g: $bound),+>)? ($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: `has_avx2` confirmed that this CPU executes AVX2
                // instructions, the only requirement of a `target_feature` fn.
                return unsafe { avx2($($arg),*) };
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use multiversion;
