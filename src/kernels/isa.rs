//! The SIMD level this CPU runs, detected once at run time, so one binary picks the right
//! kernels on every machine it is copied to. `UPWARD_ISA` can lower it (to compare paths).

use std::sync::OnceLock;

/// Instruction-set levels the kernels have paths for, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust: any CPU.
    Portable,
    /// x86-64 AVX2 with FMA (Intel Haswell, AMD Zen 1 and later).
    Avx2,
    /// AVX2 with AVX-VNNI (Intel Alder Lake and later client CPUs).
    AvxVnni,
    /// AVX-512 F, BW and VL with VNNI (Intel Ice Lake and Sapphire Rapids, AMD Zen 4).
    Avx512Vnni,
}

impl Isa {
    /// The name `UPWARD_ISA` accepts and `upward bench` reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avx-vnni",
            Isa::Avx512Vnni => "avx512-vnni",
        }
    }

    /// Parses a name from [`Isa::name`].
    pub fn parse(name: &str) -> Option<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni]
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// The level this CPU supports, ignoring `UPWARD_ISA`.
pub fn detected() -> Isa {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable-kernels")))]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        let avx512 = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni");
        if avx2 && avx512 {
            return Isa::Avx512Vnni;
        }
        if avx2 && std::is_x86_feature_detected!("avxvnni") {
            return Isa::AvxVnni;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// The level the kernels use: [`detected`], lowered to `UPWARD_ISA` when that names a
/// lower one (a higher or unknown name is ignored with a warning). Read once per process.
pub fn current() -> Isa {
    static CURRENT: OnceLock<Isa> = OnceLock::new();
    *CURRENT.get_or_init(|| {
        let found = detected();
        match std::env::var("UPWARD_ISA") {
            Ok(want) if !want.trim().is_empty() => match Isa::parse(&want) {
                Some(isa) if isa <= found => isa,
                Some(isa) => {
                    eprintln!(
                        "upward: UPWARD_ISA={} is not supported by this CPU; using {}",
                        isa.name(),
                        found.name()
                    );
                    found
                }
                None => {
                    eprintln!(
                        "upward: UPWARD_ISA={want:?} is not one of portable, avx2, avx-vnni, \
                         avx512-vnni; using {}",
                        found.name()
                    );
                    found
                }
            },
            _ => found,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_runs_low_to_high() {
        for isa in [Isa::Portable, Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni] {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse(" AVX2 "), Some(Isa::Avx2));
        assert_eq!(Isa::parse("sse9"), None);
        assert!(Isa::Portable < Isa::Avx2 && Isa::AvxVnni < Isa::Avx512Vnni);
        assert!(current() <= detected());
    }
}
