//! The CPU a benchmark ran on: its model name and the SIMD flags that decide which kernels
//! run (from `/proc/cpuinfo`, as `lscpu` shows them).

/// The flags worth reporting with a speed figure: the x86 vector extensions our kernels and
/// llama.cpp's switch on, and ARM's equivalents.
const SIMD_FLAGS: &[&str] = &[
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
    "sve2",
];

/// What `/proc/cpuinfo` says about the CPU.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cpu {
    /// The model name (`Intel(R) Xeon(R) Processor`, `AMD EPYC 9R14 96-Core Processor`).
    pub model: String,
    /// The SIMD flags it has, of those in [`SIMD_FLAGS`], in that order.
    pub simd_flags: Vec<String>,
    /// Logical CPUs this process may use.
    pub logical_cpus: usize,
}

/// Reads the CPU's description (`unknown` and no flags where `/proc/cpuinfo` is absent).
pub fn describe() -> Cpu {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cpu = parse(&info);
    cpu.logical_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpu
}

/// [`describe`] on the text of a `/proc/cpuinfo`.
fn parse(info: &str) -> Cpu {
    // The first processor's block; every core of one machine reports the same.
    let field = |names: &[&str]| {
        info.lines().take_while(|l| !l.trim().is_empty()).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            names.contains(&k.trim()).then(|| v.trim().to_string())
        })
    };
    let model = field(&["model name", "Model", "CPU part"]).unwrap_or_else(|| "unknown".into());
    let flags = field(&["flags", "Features"]).unwrap_or_default();
    let have: Vec<&str> = flags.split_whitespace().collect();
    let simd_flags =
        SIMD_FLAGS.iter().filter(|f| have.contains(f)).map(|f| f.to_string()).collect();
    Cpu { model, simd_flags, logical_cpus: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_processor_names_the_model_and_flags() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n\
                    flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16\n\n\
                    processor\t: 1\nmodel name\t: other\n";
        let cpu = parse(info);
        assert_eq!(cpu.model, "AMD EPYC 9R14");
        assert_eq!(
            cpu.simd_flags,
            ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
        );
        assert_eq!(parse("").model, "unknown");
    }
}
