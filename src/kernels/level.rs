//! Run-time selection of the SIMD path: each [`Isa`] level as a marker type, and [`run`],
//! which calls a [`Job`] monomorphized for one level inside a function compiled with that
//! level's target features.
//!
//! The kernels are generic over [`Level`] and `#[inline(always)]` down to the intrinsics, so
//! each entry point below (one `#[target_feature]` function per level) gets its own copy of
//! the whole hot loop, with every intrinsic inlined: the same code a build with
//! `target-cpu=native` made, chosen once per call instead of at compile time.

use super::isa::{self, Isa};

/// An instruction-set level as a type. The constants pick the instructions at compile time
/// of each copy; code for a level runs only inside its entry point in [`run`].
pub(crate) trait Level: 'static {
    /// The level.
    const ISA: Isa;
    /// AVX2 + FMA + F16C kernels (every level but the portable one).
    const SIMD: bool;
    /// A 256-bit `vpdpbusd` (AVX-VNNI or AVX-512 VNNI with VL).
    const VNNI: bool;
    /// AVX-512 F, BW, VL and VNNI.
    const AVX512: bool;
}

/// Plain Rust.
pub(crate) struct Portable;
/// AVX2, FMA and F16C.
pub(crate) struct Avx2;
/// AVX2 with AVX-VNNI.
pub(crate) struct AvxVnni;
/// AVX-512 with VNNI.
pub(crate) struct Avx512;

impl Level for Portable {
    const ISA: Isa = Isa::Portable;
    const SIMD: bool = false;
    const VNNI: bool = false;
    const AVX512: bool = false;
}

impl Level for Avx2 {
    const ISA: Isa = Isa::Avx2;
    const SIMD: bool = true;
    const VNNI: bool = false;
    const AVX512: bool = false;
}

impl Level for AvxVnni {
    const ISA: Isa = Isa::AvxVnni;
    const SIMD: bool = true;
    const VNNI: bool = true;
    const AVX512: bool = false;
}

impl Level for Avx512 {
    const ISA: Isa = Isa::Avx512Vnni;
    const SIMD: bool = true;
    const VNNI: bool = true;
    const AVX512: bool = true;
}

/// Work that runs at one level. Implementations mark `run` `#[inline(always)]`, so that it
/// is compiled into the entry point of that level, with its target features.
pub(crate) trait Job {
    /// The result.
    type Out;
    /// Does the work with level `L`'s instructions.
    ///
    /// # Safety
    /// The CPU supports `L` (guaranteed by [`run`]).
    unsafe fn run<L: Level>(self) -> Self::Out;
}

/// Runs `job` at level `isa`, lowered to what this CPU supports (so an `isa` above it can
/// never reach instructions the CPU lacks).
#[inline]
pub(crate) fn run<J: Job>(isa: Isa, job: J) -> J::Out {
    let isa = isa::at_most(isa);
    // SAFETY: each entry runs only at a level this CPU supports (checked just above).
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => at_avx512(job),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => at_avx_vnni(job),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => at_avx2(job),
            _ => job.run::<Portable>(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,f16c")]
unsafe fn at_avx2<J: Job>(job: J) -> J::Out {
    job.run::<Avx2>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,f16c,avxvnni")]
unsafe fn at_avx_vnni<J: Job>(job: J) -> J::Out {
    job.run::<AvxVnni>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn at_avx512<J: Job>(job: J) -> J::Out {
    job.run::<Avx512>()
}
