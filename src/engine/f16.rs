//! f32 <-> f16 conversions for the KV cache, with F16C when the CPU has it (chosen at run
//! time) and the `half` crate otherwise. Both round to nearest even, so a value converts to
//! the same bits on either path.

use half::f16;

/// True when the attention and conversion code may use AVX2, FMA and F16C: the CPU has
/// them and [`crate::kernels::isa::current`] (which `UPWARD_ISA` lowers) is at least AVX2.
pub(crate) fn simd() -> bool {
    use std::sync::OnceLock;
    static SIMD: OnceLock<bool> = OnceLock::new();
    *SIMD.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> bool {
    crate::kernels::isa::current() >= crate::kernels::isa::Isa::Avx2
        && std::is_x86_feature_detected!("f16c")
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> bool {
    false
}

/// Rounds `src` into `dst` (same length).
pub fn to_f16(src: &[f32], dst: &mut [f16]) {
    assert_eq!(src.len(), dst.len(), "f16 conversion of unequal lengths");
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: `simd()` checked that the CPU has F16C and AVX.
        unsafe { x86::to_f16(src, dst) };
        return;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(*s);
    }
}

/// Widens `src` into `dst` (same length); exact.
pub fn to_f32(src: &[f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "f16 conversion of unequal lengths");
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: `simd()` checked that the CPU has F16C and AVX.
        unsafe { x86::to_f32(src, dst) };
        return;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use half::f16;
    use std::arch::x86_64::*;

    /// F16C rounding of `src` into `dst` (equal lengths).
    ///
    /// # Safety
    /// The CPU must have AVX and F16C.
    #[target_feature(enable = "avx,f16c")]
    pub(crate) unsafe fn to_f16(src: &[f32], dst: &mut [f16]) {
        let n = src.len().min(dst.len());
        let main = n / 8 * 8;
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr() as *mut __m128i);
        let mut i = 0;
        while i < main {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(s.add(i)));
            _mm_storeu_si128(d.byte_add(2 * i), h);
            i += 8;
        }
        for j in main..n {
            dst[j] = f16::from_f32(src[j]);
        }
    }

    /// F16C widening of `src` into `dst` (equal lengths).
    ///
    /// # Safety
    /// The CPU must have AVX and F16C.
    #[target_feature(enable = "avx,f16c")]
    pub(crate) unsafe fn to_f32(src: &[f16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let main = n / 8 * 8;
        let (s, d) = (src.as_ptr() as *const __m128i, dst.as_mut_ptr());
        let mut i = 0;
        while i < main {
            let x = _mm256_cvtph_ps(_mm_loadu_si128(s.byte_add(2 * i)));
            _mm256_storeu_ps(d.add(i), x);
            i += 8;
        }
        for j in main..n {
            dst[j] = src[j].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths give the same bits, for normal, subnormal, huge and special values.
    #[test]
    fn simd_and_portable_conversions_agree() {
        let mut vals: Vec<f32> = (0..4000).map(|i| ((i as f32) * 0.731).sin() * 3.0).collect();
        vals.extend([0.0, -0.0, 1e-7, -3e-6, 6.1e-5, 65504.0, 65520.0, 1e6, -1e6, f32::INFINITY]);
        vals.extend((0..37).map(|i| (i as f32 + 0.5) * 2f32.powi(-24)));
        let portable: Vec<f16> = vals.iter().map(|&v| f16::from_f32(v)).collect();
        let mut got = vec![f16::ZERO; vals.len()];
        to_f16(&vals, &mut got);
        assert!(got.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()));
        let mut back = vec![0f32; vals.len()];
        to_f32(&got, &mut back);
        for (b, h) in back.iter().zip(&portable) {
            assert_eq!(b.to_bits(), h.to_f32().to_bits());
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("f16c") {
            let mut simd = vec![f16::ZERO; vals.len()];
            // SAFETY: F16C (and so AVX) was detected just above.
            unsafe { x86::to_f16(&vals, &mut simd) };
            assert!(simd.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()));
            let mut wide = vec![0f32; vals.len()];
            // SAFETY: as above.
            unsafe { x86::to_f32(&simd, &mut wide) };
            assert_eq!(wide, back);
        }
    }
}
