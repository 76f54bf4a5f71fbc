//! The machine's memory read bandwidth, measured the way decode reads weights: every
//! thread streams its share of a buffer far larger than the caches, once per pass.

use std::sync::Barrier;
use std::time::Instant;

/// Timed passes over the buffer (after one untimed pass); the median is reported.
const PASSES: usize = 5;
/// The smallest buffer the default picks: larger than any L3 we know of.
const MIN_DEFAULT_BYTES: u64 = 1 << 30;
/// The buffer is this many times the largest cache, when memory allows.
const CACHE_MULTIPLE: u64 = 4;

/// One measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bandwidth {
    /// Median read bandwidth over the passes, in GB/s (10^9 bytes per second).
    pub gb_s: f64,
    /// Size of the buffer read.
    pub buffer_bytes: u64,
    /// Threads reading it together.
    pub threads: usize,
    /// Timed passes.
    pub passes: usize,
}

/// The largest CPU cache in bytes (Linux sysfs; 0 when unknown).
pub fn largest_cache_bytes() -> u64 {
    let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("size")).ok())
        .filter_map(|s| parse_size(s.trim()))
        .max()
        .unwrap_or(0)
}

/// `480K`, `2048K`, `32M` or plain bytes, as sysfs writes cache sizes.
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

/// Memory the kernel says is available (`MemAvailable`), if known.
fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// The default buffer: at least 4x the largest cache and at least 1 GiB, but no more than
/// a quarter of the available memory (never under 64 MiB).
pub fn default_buffer_bytes() -> u64 {
    let want = (largest_cache_bytes() * CACHE_MULTIPLE).max(MIN_DEFAULT_BYTES);
    match available_bytes() {
        Some(avail) => want.min(avail / 4).max(64 << 20),
        None => want,
    }
}

/// The buffer for `--bandwidth-mib`: the default when `None`; an error when it is more
/// than half the available memory.
pub fn buffer_bytes(mib: Option<u64>) -> Result<u64, String> {
    let Some(mib) = mib else {
        return Ok(default_buffer_bytes());
    };
    let avail = available_bytes().unwrap_or(u64::MAX);
    match mib.checked_mul(1 << 20) {
        Some(bytes) if bytes <= avail / 2 => Ok(bytes),
        _ => Err(format!(
            "--bandwidth-mib {mib} is more than half the available memory ({} MiB)",
            avail >> 20
        )),
    }
}

/// Reads a buffer of `bytes` with `threads` threads, `PASSES` times, and returns the
/// median bandwidth. The buffer is written first (by the threads that read it), so every
/// page is backed by memory of its own rather than the shared zero page.
pub fn measure(threads: usize, bytes: u64) -> Bandwidth {
    let threads = threads.max(1);
    // u64 words, split into equal parts of whole 4 KiB pages.
    let page_words = 4096 / 8;
    let words = ((bytes / 8) as usize).div_ceil(page_words * threads) * page_words * threads;
    let mut buf: Vec<u64> = Vec::with_capacity(words);
    let part = words / threads;
    let spare = &mut buf.spare_capacity_mut()[..words];
    std::thread::scope(|s| {
        for (t, chunk) in spare.chunks_mut(part).enumerate() {
            s.spawn(move || {
                for (i, w) in chunk.iter_mut().enumerate() {
                    w.write(((t * part + i) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                }
            });
        }
    });
    // SAFETY: every word up to `words` was written above.
    unsafe { buf.set_len(words) };
    let start = Barrier::new(threads + 1);
    let end = Barrier::new(threads + 1);
    let mut times = Vec::with_capacity(PASSES);
    std::thread::scope(|s| {
        for chunk in buf.chunks(part) {
            let (start, end) = (&start, &end);
            s.spawn(move || {
                for _ in 0..=PASSES {
                    start.wait();
                    std::hint::black_box(read_all(chunk));
                    end.wait();
                }
            });
        }
        for pass in 0..=PASSES {
            start.wait();
            let t = Instant::now();
            end.wait();
            if pass > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
    });
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let read = (words * 8) as f64;
    Bandwidth {
        gb_s: read / median / 1e9,
        buffer_bytes: (words * 8) as u64,
        threads,
        passes: PASSES,
    }
}

/// Reads every word (with the widest loads this CPU has, chosen at run time).
fn read_all(words: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked above.
            return unsafe { read_avx512(words) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked above.
            return unsafe { read_avx2(words) };
        }
    }
    read_plain(words)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_avx512(words: &[u64]) -> u64 {
    read_plain(words)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn read_avx2(words: &[u64]) -> u64 {
    read_plain(words)
}

/// XOR of all words, in 16 independent lanes so that the compiler vectorizes it and the
/// loads never wait on each other.
#[inline(always)]
fn read_plain(words: &[u64]) -> u64 {
    let mut acc = [0u64; 16];
    let mut chunks = words.chunks_exact(16);
    for c in &mut chunks {
        for (a, w) in acc.iter_mut().zip(c) {
            *a ^= w;
        }
    }
    let tail = chunks.remainder().iter().fold(0, |a, w| a ^ w);
    acc.iter().fold(tail, |a, w| a ^ w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("491520K"), Some(480 << 20));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn a_small_buffer_is_read_whole() {
        let b = measure(2, 1 << 20);
        assert!(b.gb_s > 0.0 && b.gb_s.is_finite());
        assert_eq!(b.buffer_bytes % (2 * 4096), 0);
        assert!(b.buffer_bytes >= 1 << 20);
        assert_eq!(read_all(&[1, 2, 4, 8]), 15);
    }
}
