//! The size of the process's thread pools, set once at the program's edge (`--threads`):
//! rayon's global pool runs our kernels and candle's ops, and the engine's decode team
//! takes its size from it.

/// Sizes the thread pools of our kernels and candle's ops to `n` (at least 1). Call it
/// before the first model is loaded; later calls leave the pool as it is.
pub fn set(n: usize) {
    let n = n.max(1);
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
}
