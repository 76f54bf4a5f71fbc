//! Quantized kernels vs candle's `QMatMul::forward` on the same weights, for the matrix
//! shapes of SmolLM2-135M, Gemma-3-270M and a 1B-class llama.
//!
//! Decode (m = 1) reports weight bytes streamed per second (GB/s: the ceiling is memory
//! bandwidth); prefill (m = 256) reports GFLOP/s. Each number is the median of several
//! timed runs, on rayon pools of 1 and 2 threads.
//!
//! Run: `cargo bench --bench kernels` (optionally `-- <filter>` to match the shape labels).
//! The kernels run at the CPU's level, printed first; `UPWARD_ISA=avx2` (or `avx-vnni`,
//! `portable`) measures a lower one.

use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use upward::kernels;

struct Shape {
    label: &'static str,
    dtype: GgmlDType,
    rows: usize,
    cols: usize,
    prefill: bool,
}

const fn s(
    label: &'static str,
    dtype: GgmlDType,
    rows: usize,
    cols: usize,
    prefill: bool,
) -> Shape {
    Shape { label, dtype, rows, cols, prefill }
}

const SHAPES: &[Shape] = &[
    s("smollm2 q/o 576x576", GgmlDType::Q4_1, 576, 576, true),
    s("smollm2 k/v 192x576", GgmlDType::Q4_1, 192, 576, false),
    s("smollm2 gate/up 1536x576", GgmlDType::Q4_1, 1536, 576, true),
    s("smollm2 down 576x1536", GgmlDType::Q4_1, 576, 1536, true),
    s("smollm2 lm-head 49152x576", GgmlDType::Q8_0, 49152, 576, false),
    s("gemma3 q 1024x640", GgmlDType::Q5_0, 1024, 640, true),
    s("gemma3 gate/up 2048x640", GgmlDType::Q5_0, 2048, 640, true),
    s("gemma3 o 640x1024", GgmlDType::Q4K, 640, 1024, true),
    s("gemma3 down 640x2048", GgmlDType::Q6K, 640, 2048, true),
    s("gemma3 lm-head 262144x640", GgmlDType::Q8_0, 262144, 640, false),
    s("llama1b gate/up 8192x2048", GgmlDType::Q4K, 8192, 2048, true),
    s("llama1b down 2048x8192", GgmlDType::Q4K, 2048, 8192, true),
    s("llama1b down 2048x8192", GgmlDType::Q6K, 2048, 8192, true),
];

const PREFILL_M: usize = 256;
const RUNS: usize = 5;

/// (median, best) seconds per call of `f`, each run repeating it for at least `target`.
fn median_secs(mut f: impl FnMut(), target: Duration) -> (f64, f64) {
    f();
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let reps = ((target.as_secs_f64() / once).ceil() as usize).max(1);
    let runs = if once > 0.5 { 3 } else { RUNS };
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[runs / 2], times[0])
}

fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
        })
        .collect()
}

fn main() -> candle_core::Result<()> {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let target = Duration::from_millis(150);
    println!("kernels: {}", kernels::isa::current().name());
    println!(
        "{:<28} {:>5} {:>3} {:>6} | {:>10} {:>10} {:>6}",
        "shape", "type", "thr", "m", "ours", "candle", "ratio"
    );
    for sh in SHAPES {
        if filter.as_ref().is_some_and(|f| !sh.label.contains(f.as_str())) {
            continue;
        }
        let w = Tensor::from_vec(
            pseudo_random(sh.rows * sh.cols, 1),
            (sh.rows, sh.cols),
            &Device::Cpu,
        )?;
        let q = QTensor::quantize(&w, sh.dtype)?;
        let bytes = q.data()?.into_owned();
        let qmm = QMatMul::from_qtensor(q)?;
        let mut ms = vec![1];
        if sh.prefill {
            ms.push(PREFILL_M);
        }
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for &m in &ms {
                let x = pseudo_random(m * sh.cols, 2);
                let xt = Tensor::from_vec(x.clone(), (m, sh.cols), &Device::Cpu)?;
                let mut out = vec![0f32; m * sh.rows];
                let ours = pool.install(|| {
                    median_secs(
                        || {
                            kernels::matmul(sh.dtype, &bytes, sh.rows, sh.cols, &x, m, &mut out)
                                .unwrap()
                        },
                        target,
                    )
                });
                let theirs =
                    pool.install(|| median_secs(|| drop(qmm.forward(&xt).unwrap()), target));
                let ((ours, ours_best), (theirs, _)) = (ours, theirs);
                let (unit, work) = if m == 1 {
                    ("GB/s", bytes.len() as f64 / 1e9)
                } else {
                    ("GFLOP/s", 2.0 * (m * sh.rows * sh.cols) as f64 / 1e9)
                };
                let (a, b, best) = (work / ours, work / theirs, work / ours_best);
                println!(
                    "{:<28} {:>5} {:>3} {:>6} | {:>10.2} {:>10.2} {:>5.2}x  {unit} (ours: {:.3} ms, best run {:.2})",
                    sh.label,
                    format!("{:?}", sh.dtype),
                    threads,
                    m,
                    a,
                    b,
                    a / b,
                    ours * 1e3,
                    best
                );
            }
        }
    }
    Ok(())
}
