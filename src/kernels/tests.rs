//! Kernels against candle's reference: its quantizer makes the weight bytes, its
//! dequantizer and an f64 matmul give the expected output.

use super::*;
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

/// Deterministic pseudo-random numbers (xorshift64*), roughly Gaussian via sums of uniforms.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.uniform()).sum::<f32>() - 2.0
    }
    /// `n` values with a per-32 scale that varies a lot, some outliers and some zeros,
    /// as real weights and activations have.
    pub(super) fn data(&mut self, n: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n);
        let mut scale = 1.0;
        for i in 0..n {
            if i % 32 == 0 {
                scale = 0.02 + 2.0 * self.uniform();
            }
            let x = self.normal() * scale;
            let x = match self.uniform() {
                u if u < 0.01 => x * 8.0,
                u if u < 0.02 => 0.0,
                _ => x,
            };
            v.push(x);
        }
        v
    }
}

/// Every level this CPU runs, lowest (portable) first: each is tested, not only the one
/// the process picked.
fn levels() -> Vec<Isa> {
    isa::ALL.into_iter().filter(|&l| isa::supports(l)).collect()
}

pub(super) const ALL: [GgmlDType; 11] = [
    GgmlDType::F32,
    GgmlDType::F16,
    GgmlDType::BF16,
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
];

/// Weights quantized by candle: (raw GGUF bytes, candle's dequantized f32 values).
pub(super) fn quantized(
    dtype: GgmlDType,
    rows: usize,
    cols: usize,
    seed: u64,
) -> (Vec<u8>, Vec<f32>) {
    let mut rng = Rng(seed);
    let w = Tensor::from_vec(rng.data(rows * cols), (rows, cols), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, dtype).unwrap();
    let bytes = q.data().unwrap().into_owned();
    let deq = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    (bytes, deq)
}

/// Checks `out` against the f64 product of `deq` and `x`. The bound is exact for the
/// integer kernels: each activation is off by at most half its 8-bit step `amax/127/2`
/// (amax over its block of `act` values), so `|err| <= Σ|w_k|·step_k/2`, plus `rel` of
/// `|w_r|·|x_i|` for float rounding.
#[allow(clippy::too_many_arguments)]
fn check(
    out: &[f32],
    deq: &[f32],
    x: &[f32],
    rows: usize,
    cols: usize,
    m: usize,
    act: usize,
    what: &str,
) {
    let rel = 1e-5;
    for i in 0..m {
        let xi = &x[i * cols..(i + 1) * cols];
        let xn = xi.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        let half_step: Vec<f64> = xi
            .iter()
            .enumerate()
            .map(|(k, _)| {
                if act == 0 {
                    return 0.0;
                }
                let b = k / act * act;
                let amax = xi[b..b + act].iter().fold(0f32, |a, &v| a.max(v.abs()));
                amax as f64 / 127.0 / 2.0
            })
            .collect();
        for r in 0..rows {
            let wr = &deq[r * cols..(r + 1) * cols];
            let want: f64 = wr.iter().zip(xi).map(|(&a, &b)| a as f64 * b as f64).sum();
            let wn = wr.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            let bound: f64 = wr.iter().zip(&half_step).map(|(&a, &h)| (a as f64).abs() * h).sum();
            let got = out[i * rows + r] as f64;
            assert!(
                (got - want).abs() <= bound * 1.001 + rel * wn * xn + 1e-6,
                "{what}: out[{i}][{r}] = {got}, want {want} (bound {bound}, |w| {wn:.3}, |x| {xn:.3})"
            );
        }
    }
}

/// Values per activation block of the kernel for `dtype` (0: f32 activations).
fn act_for(dtype: GgmlDType) -> usize {
    match dtype.block_size() {
        1 => 0,
        b => b,
    }
}

fn cols_for(dtype: GgmlDType) -> usize {
    match dtype.block_size() {
        256 => 768,
        32 => 160,
        _ => 77,
    }
}

#[test]
fn matmul_matches_candle_for_every_type_and_batch() {
    for (t, &dtype) in ALL.iter().enumerate() {
        let (rows, cols) = (37, cols_for(dtype));
        let (bytes, deq) = quantized(dtype, rows, cols, 7 + t as u64);
        assert_eq!(bytes.len(), rows * row_bytes(dtype, cols), "{dtype:?} row bytes");
        for m in [1, 2, 3, 6, 8, 17, 64] {
            let x = Rng(100 + m as u64).data(m * cols);
            let mut outs = Vec::new();
            for isa in levels() {
                let mut out = vec![f32::NAN; m * rows];
                matmul_with(dtype, &bytes, rows, cols, &x, m, &mut out, isa).unwrap();
                let what = format!("{dtype:?} m={m} {}", isa.name());
                check(&out, &deq, &x, rows, cols, m, act_for(dtype), &what);
                outs.push((isa, out));
            }
            // Every SIMD level does the portable path's integer arithmetic: they agree up to
            // the order of float additions.
            let (_, portable) = &outs[0];
            for (isa, out) in &outs[1..] {
                for (k, (a, b)) in out.iter().zip(portable).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                        "{dtype:?} m={m} [{k}]: {} {a} vs portable {b}",
                        isa.name()
                    );
                }
            }
        }
    }
}

#[test]
fn matmul_parallel_paths_cover_every_row() {
    // Large enough to be split over the pool, with row counts that leave ragged chunks.
    for (dtype, rows, cols) in [
        (GgmlDType::Q4_1, 1003, 576),
        (GgmlDType::Q8_0, 517, 640),
        (GgmlDType::Q5_0, 259, 640),
        (GgmlDType::Q4K, 301, 1024),
        (GgmlDType::Q6K, 263, 2048),
        (GgmlDType::F16, 129, 576),
    ] {
        let (bytes, deq) = quantized(dtype, rows, cols, rows as u64);
        for m in [1, 5, 33] {
            let x = Rng(m as u64).data(m * cols);
            let mut out = vec![f32::NAN; m * rows];
            matmul(dtype, &bytes, rows, cols, &x, m, &mut out).unwrap();
            check(&out, &deq, &x, rows, cols, m, act_for(dtype), &format!("{dtype:?} m={m}"));
        }
    }
}

#[test]
fn dequantize_row_equals_candle() {
    for (t, &dtype) in ALL.iter().enumerate() {
        let (rows, cols) = (5, cols_for(dtype) * 2);
        let (bytes, deq) = quantized(dtype, rows, cols, 50 + t as u64);
        let rb = row_bytes(dtype, cols);
        let mut out = vec![f32::NAN; cols];
        for r in 0..rows {
            dequantize_row(dtype, &bytes[r * rb..(r + 1) * rb], cols, &mut out).unwrap();
            for (k, (&a, &b)) in out.iter().zip(&deq[r * cols..(r + 1) * cols]).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                    "{dtype:?} row {r} col {k}: {a} vs candle {b}"
                );
            }
        }
    }
}

#[test]
fn zero_and_constant_inputs() {
    let (rows, cols) = (9, 256);
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::Q8_0] {
        let (bytes, deq) = quantized(dtype, rows, cols, 3);
        for fill in [0.0f32, 1.0, -3.5] {
            let x = vec![fill; 2 * cols];
            let mut out = vec![f32::NAN; 2 * rows];
            matmul(dtype, &bytes, rows, cols, &x, 2, &mut out).unwrap();
            check(&out, &deq, &x, rows, cols, 2, act_for(dtype), &format!("{dtype:?} x={fill}"));
        }
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let (bytes, _) = quantized(GgmlDType::Q4_0, 4, 64, 1);
    let x = vec![0.5f32; 64];
    let mut out = vec![0f32; 4];
    assert!(matmul(GgmlDType::Q4_0, &bytes, 4, 64, &x, 1, &mut out).is_ok());
    let err = matmul(GgmlDType::Q4_0, &bytes[1..], 4, 64, &x, 1, &mut out).unwrap_err();
    assert!(matches!(err, KernelError::Length { got: 143, want: 144, .. }), "{err}");
    let err = matmul(GgmlDType::Q4_0, &bytes, 4, 64, &x[1..], 1, &mut out).unwrap_err();
    assert!(err.to_string().contains("input x"), "{err}");
    let err = matmul(GgmlDType::Q4_0, &bytes, 4, 64, &x, 1, &mut out[1..]).unwrap_err();
    assert!(err.to_string().contains("output"), "{err}");
    let err = matmul(GgmlDType::Q4_0, &bytes, 4, 48, &x[..48], 1, &mut out).unwrap_err();
    assert!(matches!(err, KernelError::PartialBlock { block: 32, .. }), "{err}");
    let err = matmul(GgmlDType::Q2K, &bytes, 4, 64, &x, 1, &mut out).unwrap_err();
    assert_eq!(err, KernelError::Unsupported(GgmlDType::Q2K));
    assert!(!supported(GgmlDType::Q2K) && supported(GgmlDType::Q4K));
    let err = matmul(GgmlDType::Q4_0, &bytes, usize::MAX, 64, &x, 1, &mut out).unwrap_err();
    assert!(matches!(err, KernelError::Overflow { .. }), "{err}");
    let mut row = vec![0f32; 64];
    let err = dequantize_row(GgmlDType::Q4_0, &bytes[..35], 64, &mut row).unwrap_err();
    assert!(matches!(err, KernelError::Length { got: 35, want: 36, .. }), "{err}");
    // Empty products are fine and touch nothing.
    assert!(matmul(GgmlDType::Q4_0, &bytes, 4, 64, &[], 0, &mut []).is_ok());
}

/// Real weights of both test models, one tensor per type they contain, against candle.
#[test]
fn model_tensors_match_candle() {
    use candle_core::quantized::gguf_file;
    use std::io::{Read, Seek, SeekFrom};
    let dir = std::env::var("UPWARD_TEST_MODEL_DIR").unwrap_or_else(|_| {
        panic!(
            "set UPWARD_TEST_MODEL_DIR to the folder holding SmolLM2-135M-Instruct.Q4_1.gguf \
             and gemma-3-270m-q4_k_m.gguf (`bash scripts/fetch-test-models.sh` fetches them)"
        )
    });
    let cases = [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "blk.0.ffn_down.weight"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "token_embd.weight"),
        ("gemma-3-270m-q4_k_m.gguf", "blk.0.attn_q.weight"),
        ("gemma-3-270m-q4_k_m.gguf", "blk.0.attn_output.weight"),
        ("gemma-3-270m-q4_k_m.gguf", "blk.0.ffn_down.weight"),
        ("gemma-3-270m-q4_k_m.gguf", "blk.1.ffn_down.weight"),
    ];
    let mut seen = Vec::new();
    for (file, name) in cases {
        let path = std::path::Path::new(&dir).join(file);
        let mut f = std::fs::File::open(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; run `bash scripts/fetch-test-models.sh`", path.display())
        });
        let content = gguf_file::Content::read(&mut f).unwrap();
        let info = &content.tensor_infos[name];
        let (rows, cols) = info.shape.dims2().unwrap();
        let rows = rows.min(96);
        let rb = row_bytes(info.ggml_dtype, cols);
        let mut bytes = vec![0u8; rows * rb];
        f.seek(SeekFrom::Start(content.tensor_data_offset + info.offset)).unwrap();
        f.read_exact(&mut bytes).unwrap();
        let q = info.read(&mut f, content.tensor_data_offset, &Device::Cpu).unwrap();
        let deq = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        let deq = deq.narrow(0, 0, rows * cols).unwrap().to_vec1::<f32>().unwrap();
        let mut row = vec![0f32; cols];
        dequantize_row(info.ggml_dtype, &bytes[rb..2 * rb], cols, &mut row).unwrap();
        assert_eq!(row, deq[cols..2 * cols], "{file} {name} row 1");
        let m = 3;
        let x = Rng(9).data(m * cols);
        let mut out = vec![0f32; m * rows];
        matmul(info.ggml_dtype, &bytes, rows, cols, &x, m, &mut out).unwrap();
        check(&out, &deq, &x, rows, cols, m, act_for(info.ggml_dtype), &format!("{file} {name}"));
        seen.push(info.ggml_dtype);
    }
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0, GgmlDType::Q5_0, GgmlDType::Q4K, GgmlDType::Q6K]
    {
        assert!(seen.contains(&dtype), "no {dtype:?} tensor among the cases: {seen:?}");
    }
}

#[test]
fn simd_activation_quantization_equals_portable() {
    let x = Rng(77).data(4 * 256);
    for isa in levels() {
        let mut a = vec![blocks::Q8Block::default(); 32];
        let mut b = a.clone();
        blocks::quantize_q8_on(isa, &x, &mut a);
        blocks::quantize_q8_portable(&x, &mut b);
        for (a, b) in a.iter().zip(&b) {
            assert_eq!((a.d, a.s, a.qs), (b.d, b.s, b.qs), "{}", isa.name());
        }
        let mut a = vec![blocks::Q8KBlock::default(); 4];
        let mut b = a.clone();
        blocks::quantize_q8k_on(isa, &x, &mut a);
        blocks::quantize_q8k_portable(&x, &mut b);
        for (a, b) in a.iter().zip(&b) {
            assert_eq!((a.d, a.qs, a.bsums), (b.d, b.qs, b.bsums), "{}", isa.name());
        }
    }
}

#[test]
fn k4_scale_unpacking_matches_the_format() {
    let mut rng = Rng(5);
    for _ in 0..2000 {
        let s: Vec<u8> = (0..12).map(|_| (rng.uniform() * 256.0) as u8).collect();
        assert_eq!(blocks::scale_min_k4(&s), blocks::scale_min_k4_ref(&s), "{s:?}");
    }
}

/// A row of `x` gives the same bits alone (decode) as in any batch (prefill, whatever path
/// the batch size selects) and on any number of threads, at every level: the engine relies
/// on it so that a conversation continued from the KV cache equals a fresh prefill of the
/// same tokens.
#[test]
fn rows_are_bit_identical_whatever_the_batch() {
    const MS: [usize; 7] = [1, 3, 8, 9, 17, 64, 130];
    let pools: Vec<rayon::ThreadPool> = [1, 3]
        .iter()
        .map(|&t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap())
        .collect();
    for isa in levels() {
        for (t, &dtype) in ALL.iter().enumerate() {
            let (rows, cols) = (53, cols_for(dtype));
            let (bytes, _) = quantized(dtype, rows, cols, 300 + t as u64);
            let mmax = MS[MS.len() - 1];
            let x = Rng(400 + t as u64).data(mmax * cols);
            // Each row alone (m = 1).
            let mut single = vec![0f32; mmax * rows];
            for (xi, oi) in x.chunks_exact(cols).zip(single.chunks_exact_mut(rows)) {
                matmul_with(dtype, &bytes, rows, cols, xi, 1, oi, isa).unwrap();
            }
            for pool in &pools {
                for m in MS {
                    let mut out = vec![f32::NAN; m * rows];
                    let xm = &x[..m * cols];
                    pool.install(|| matmul_with(dtype, &bytes, rows, cols, xm, m, &mut out, isa))
                        .unwrap();
                    for i in 0..m {
                        for r in 0..rows {
                            let (a, b) = (out[i * rows + r], single[i * rows + r]);
                            assert_eq!(
                                a.to_bits(),
                                b.to_bits(),
                                "{} {dtype:?} m={m} threads={} row {i} col {r}: {a} in the \
                                 batch, {b} alone",
                                isa.name(),
                                pool.current_num_threads()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn prepared_rows_in_any_ranges_equal_matmul() {
    for isa in levels() {
        for (t, &dtype) in ALL.iter().enumerate() {
            let (rows, cols) = (53, cols_for(dtype));
            let (bytes, _) = quantized(dtype, rows, cols, 500 + t as u64);
            let x = Rng(600 + t as u64).data(cols);
            let mut want = vec![0f32; rows];
            matmul_with(dtype, &bytes, rows, cols, &x, 1, &mut want, isa).unwrap();
            let mut row = PreparedRow::default();
            // Prepared for several types at once, this one among them.
            let extra = if cols % 32 == 0 { GgmlDType::Q8_0 } else { GgmlDType::F32 };
            row.prepare_on(isa, &x, &[GgmlDType::F16, dtype, extra]).unwrap();
            for cut in [1, 4, 7, 16, 53] {
                let mut got = vec![f32::NAN; rows];
                for (i, part) in got.chunks_mut(cut).enumerate() {
                    matvec_rows_on(isa, dtype, &bytes, &row, i * cut, part).unwrap();
                }
                let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{} {dtype:?} in ranges of {cut} rows differs from matmul",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn prepared_rows_check_their_inputs() {
    let (bytes, _) = quantized(GgmlDType::Q4K, 4, 256, 1);
    let x = vec![0.5f32; 256];
    let mut row = PreparedRow::default();
    row.prepare(&x, &[GgmlDType::Q4_0]).unwrap();
    let mut out = vec![0f32; 2];
    let err = matvec_rows(GgmlDType::Q4K, &bytes, &row, 0, &mut out).unwrap_err();
    assert_eq!(err, KernelError::NotPrepared(GgmlDType::Q4K));
    row.prepare(&x, &[GgmlDType::Q4K]).unwrap();
    assert!(matvec_rows(GgmlDType::Q4K, &bytes, &row, 2, &mut out).is_ok());
    let err = matvec_rows(GgmlDType::Q4K, &bytes, &row, 3, &mut out).unwrap_err();
    assert!(matches!(err, KernelError::Length { got: 576, want: 720, .. }), "{err}");
    let err = row.prepare(&x[..100], &[GgmlDType::Q4K]).unwrap_err();
    assert!(matches!(err, KernelError::PartialBlock { .. }), "{err}");
}

/// Panels of width `W` give every row the bits it gets alone (at the width's own level);
/// `q8_0` says whether this width takes Q8_0 weights (the other types without a panel
/// kernel must be declined).
#[cfg(target_arch = "x86_64")]
fn panels_give_each_row_its_own_bits<W: panel::Wide>(q8_0: bool) {
    let isa = <W::L as Level>::ISA;
    if !isa::supports(isa) {
        eprintln!("this CPU lacks {}: its panels are not tested here", isa.name());
        return;
    }
    for (t, &dtype) in ALL.iter().enumerate() {
        let (rows, cols) = (53, cols_for(dtype));
        let (bytes, deq) = quantized(dtype, rows, cols, 700 + t as u64);
        let x = Rng(800 + t as u64).data(33 * cols);
        let mut single = vec![0f32; 33 * rows];
        for (xi, oi) in x.chunks_exact(cols).zip(single.chunks_exact_mut(rows)) {
            matmul_with(dtype, &bytes, rows, cols, xi, 1, oi, isa).unwrap();
        }
        for m in [8, 9, 17, 33] {
            let mut out = vec![f32::NAN; m * rows];
            let ran = panel_matmul::<W>(dtype, &bytes, rows, cols, &x[..m * cols], m, &mut out);
            use GgmlDType::*;
            let expected = matches!(dtype, Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q4K | Q5K | Q6K)
                || (q8_0 && dtype == Q8_0);
            assert_eq!(ran, expected, "{dtype:?}: panel path taken");
            if !ran {
                continue;
            }
            let what = format!("{} {dtype:?}", isa.name());
            check(&out, &deq, &x[..m * cols], rows, cols, m, act_for(dtype), &what);
            for (k, (a, b)) in out.iter().zip(&single).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{what} m={m} [{k}]: {a} vs {b} alone");
            }
        }
    }
}

/// The AVX2 panels (8 rows, what CPUs without AVX-512 or AVX-VNNI run for prefill); Q8_0
/// is left to the row kernels there.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_panels_give_each_row_its_own_bits() {
    panels_give_each_row_its_own_bits::<panel::V256>(false);
}

/// The 8-row panels with 256-bit `vpdpbusd` (AVX-VNNI laptops), Q8_0 included.
#[cfg(target_arch = "x86_64")]
#[test]
fn vnni256_panels_give_each_row_its_own_bits() {
    panels_give_each_row_its_own_bits::<panel::V256Vnni>(true);
}

/// The 16-row AVX-512 VNNI panels, Q8_0 included.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_panels_give_each_row_its_own_bits() {
    panels_give_each_row_its_own_bits::<panel::V512>(true);
}

/// `isa::current` (what `UPWARD_ISA` picks) is what `matmul` runs: its bits equal that
/// level's, and the process's level is one the CPU supports.
#[test]
fn matmul_runs_the_current_level() {
    let cur = isa::current();
    assert!(isa::supports(cur));
    let (rows, cols) = (21, 256);
    let (bytes, _) = quantized(GgmlDType::Q4K, rows, cols, 11);
    for m in [1, 9] {
        let x = Rng(12).data(m * cols);
        let (mut a, mut b) = (vec![0f32; m * rows], vec![0f32; m * rows]);
        matmul(GgmlDType::Q4K, &bytes, rows, cols, &x, m, &mut a).unwrap();
        matmul_with(GgmlDType::Q4K, &bytes, rows, cols, &x, m, &mut b, cur).unwrap();
        assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()), "m={m}");
    }
}
