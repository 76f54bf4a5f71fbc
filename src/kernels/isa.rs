//! The SIMD level this CPU runs, detected once at run time, so one binary picks the right
//! kernels on every machine it is copied to. `UPWARD_ISA` can lower it (to compare paths).

use std::sync::OnceLock;

/// Instruction-set levels the kernels have paths for, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust: any CPU.
    Portable,
    /// x86-64 AVX2 with FMA and F16C (Intel Haswell, AMD Zen 1 and later).
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

/// Every level, lowest first.
pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni];

/// Whether this CPU runs the kernels of `isa` (checked once per process). Not every lower
/// level is supported: AVX-512 VNNI CPUs without AVX-VNNI (Intel Ice Lake, AMD Zen 4) skip
/// [`Isa::AvxVnni`].
pub fn supports(isa: Isa) -> bool {
    static SUPPORT: OnceLock<[bool; 4]> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        let mut s = [true, false, false, false];
        #[cfg(all(target_arch = "x86_64", not(feature = "portable-kernels")))]
        {
            let avx2 = std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c");
            let avx512 = std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512vnni");
            s[Isa::Avx2 as usize] = avx2;
            s[Isa::AvxVnni as usize] = avx2 && std::is_x86_feature_detected!("avxvnni");
            s[Isa::Avx512Vnni as usize] = avx2 && avx512;
        }
        s
    })[isa as usize]
}

/// The highest level this CPU supports that is at most `isa`.
pub fn at_most(isa: Isa) -> Isa {
    ALL.into_iter().filter(|&l| l <= isa && supports(l)).max().unwrap_or(Isa::Portable)
}

/// The level this CPU supports, ignoring `UPWARD_ISA`.
pub fn detected() -> Isa {
    at_most(Isa::Avx512Vnni)
}

/// The level the kernels use: [`detected`], lowered to `UPWARD_ISA` when that names a
/// lower one (a higher or unknown name is ignored with a warning; a lower one this CPU
/// lacks, such as `avx-vnni` on AMD Zen 4, gives the next level below it). Read once per
/// process.
pub fn current() -> Isa {
    static CURRENT: OnceLock<Isa> = OnceLock::new();
    *CURRENT.get_or_init(|| {
        let found = detected();
        match std::env::var("UPWARD_ISA") {
            Ok(want) if !want.trim().is_empty() => match Isa::parse(&want) {
                Some(isa) if isa <= found => {
                    let level = at_most(isa);
                    if level != isa {
                        eprintln!(
                            "upward: UPWARD_ISA={} is not supported by this CPU; using {}",
                            isa.name(),
                            level.name()
                        );
                    }
                    level
                }
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
        assert!(current() <= detected() && supports(current()) && supports(Isa::Portable));
        for isa in ALL {
            let l = at_most(isa);
            assert!(l <= isa && supports(l), "{isa:?} -> {l:?}");
        }
    }
}
