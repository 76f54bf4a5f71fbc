//! A small team of threads for the decode step, which waits by spinning.
//!
//! Decoding one token runs a few hundred short parallel steps (each layer's mat-vecs and
//! attention), each taking tens of microseconds. Waking sleeping threads for every step, as
//! a general-purpose pool does, costs a large share of that (futex wake-ups and
//! rescheduling). The team's threads instead spin on an atomic counter between steps, as
//! llama.cpp's do, and fall asleep only after `SPIN` + `YIELD` without work, so an idle
//! REPL burns no CPU.
//!
//! [`Team::for_each`] hands out items of a slice to the caller and the workers, each item to
//! exactly one thread, and returns when all are done.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a waiting thread spins before it starts yielding its core.
const SPIN: Duration = Duration::from_micros(200);
/// How long it then yields before it sleeps until woken.
const YIELD: Duration = Duration::from_millis(3);

/// Job of one step: called once on every thread of the team.
type Job<'a> = dyn Fn() + Sync + 'a;

struct Shared {
    /// Bumped once per step; workers run the step when they see it change.
    step: AtomicU64,
    /// The current step's job (a `&Job` on the caller's stack, behind a thin pointer),
    /// valid until `pending` is 0.
    job: AtomicPtr<&'static Job<'static>>,
    /// Workers still running the current step.
    pending: AtomicUsize,
    /// Workers asleep (or about to sleep) on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    quit: AtomicBool,
    /// A worker's job panicked during the current step.
    panicked: AtomicBool,
}

/// A caller plus `threads - 1` workers that run [`for_each`](Team::for_each) steps together.
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// A worker's job panicked (a bug: the jobs are our own kernels).
#[derive(Debug, thiserror::Error)]
#[error("a decode thread panicked")]
pub struct TeamPanicked;

impl Team {
    /// A team of `threads` (at least 1: the caller alone).
    pub fn new(threads: usize) -> Team {
        let shared = Arc::new(Shared {
            step: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            pending: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            quit: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
        });
        let mut workers = Vec::new();
        for i in 1..threads.max(1) {
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("upward-decode-{i}"))
                .spawn(move || work(&shared));
            // Without a thread the team is smaller, never wrong.
            if let Ok(handle) = spawned {
                workers.push(handle);
            }
        }
        Team { shared, workers }
    }

    /// Threads in the team, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `f` on every item of `items`, spread over the team (each item on exactly one
    /// thread, in no set order), and returns when all calls have returned.
    pub fn for_each<T: Send>(
        &self,
        items: &mut [T],
        f: impl Fn(&mut T) + Sync,
    ) -> Result<(), TeamPanicked> {
        if self.workers.is_empty() || items.len() <= 1 {
            items.iter_mut().for_each(f);
            return Ok(());
        }
        let next = AtomicUsize::new(0);
        let base = SendPtr(items.as_mut_ptr());
        let len = items.len();
        let job = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= len {
                break;
            }
            // SAFETY: `fetch_add` gives every index in 0..len to exactly one thread, so
            // this is the only reference to item `i`; `items` outlives the step because
            // `run` returns only after every worker has finished it.
            f(unsafe { &mut *base.get().add(i) });
        };
        self.run(&job)
    }

    /// Runs `job` on the caller and every worker; returns once all have finished.
    fn run(&self, job: &Job<'_>) -> Result<(), TeamPanicked> {
        let s = &*self.shared;
        // SAFETY: `slot` is published only until `pending` drops to 0, which `Wait` below
        // waits for (even if the caller's own share panics) before `slot` and `job` go
        // away, so no worker uses them after this frame.
        let slot: &'static Job<'static> = unsafe { std::mem::transmute(job) };
        s.panicked.store(false, Ordering::Relaxed);
        s.pending.store(self.workers.len(), Ordering::Relaxed);
        s.job.store(&slot as *const _ as *mut _, Ordering::Relaxed);
        s.step.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        struct Wait<'a>(&'a Shared);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                let s = self.0;
                wait_until(|| s.pending.load(Ordering::Acquire) == 0);
                s.job.store(std::ptr::null_mut(), Ordering::Relaxed);
            }
        }
        let wait = Wait(s);
        job();
        drop(wait);
        if s.panicked.load(Ordering::Relaxed) {
            return Err(TeamPanicked);
        }
        Ok(())
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.quit.store(true, Ordering::SeqCst);
        s.step.fetch_add(1, Ordering::SeqCst);
        {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A raw pointer to the items of a step, shared by its threads.
struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: the threads use disjoint items (see `Team::for_each`), and `T: Send` there.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// Spins, then yields, until `done()`.
fn wait_until(done: impl Fn() -> bool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !done() {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && start.elapsed() > SPIN {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A worker's loop: wait for a new step, run it, report, repeat.
fn work(s: &Shared) {
    // Steps are numbered from 1, and the next starts only when this worker has finished
    // the last: a worker that starts late still sees step 1 as new.
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while s.step.load(Ordering::Acquire) == seen {
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            let idle = start.elapsed();
            if idle < SPIN {
                std::hint::spin_loop();
            } else if idle < SPIN + YIELD {
                std::thread::yield_now();
            } else {
                let mut guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, Ordering::SeqCst);
                while s.step.load(Ordering::SeqCst) == seen {
                    guard = s.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                s.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
        }
        seen = s.step.load(Ordering::Acquire);
        if s.quit.load(Ordering::SeqCst) {
            return;
        }
        let slot = s.job.load(Ordering::Acquire);
        if !slot.is_null() {
            // SAFETY: the caller keeps the job alive until `pending` reaches 0, which
            // needs this worker's decrement below.
            let job = unsafe { *slot };
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.pending.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_over_many_steps() {
        for threads in [1, 2, 3] {
            let team = Team::new(threads);
            assert_eq!(team.threads(), threads);
            for step in 0..2000usize {
                let mut items: Vec<(usize, usize)> = (0..step % 17).map(|i| (i, 0)).collect();
                team.for_each(&mut items, |(i, hits)| *hits += *i + 1).unwrap();
                assert!(items.iter().all(|(i, hits)| *hits == i + 1), "step {step}");
            }
        }
    }

    #[test]
    fn sleeping_workers_wake_for_the_next_step() {
        let team = Team::new(2);
        // An idle worker goes to sleep (waiting up to a minute for a busy machine to run it).
        let asleep = (0..60_000).any(|_| {
            std::thread::sleep(Duration::from_millis(1));
            team.shared.sleepers.load(Ordering::SeqCst) == 1
        });
        assert!(asleep, "the idle worker never went to sleep");
        // The next step wakes it: the caller holds item 0 until the other item is taken,
        // which only the woken worker can do.
        let taken = AtomicUsize::new(0);
        let mut items: Vec<Option<String>> = vec![None; 2];
        team.for_each(&mut items, |v| {
            taken.fetch_add(1, Ordering::SeqCst);
            *v = std::thread::current().name().map(str::to_string);
            for _ in 0..60_000 {
                if taken.load(Ordering::SeqCst) == 2 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
        assert!(items.iter().any(|n| n.as_deref() == Some("upward-decode-1")), "{items:?}");
    }

    #[test]
    fn a_panicking_step_leaves_the_team_usable() {
        let team = Team::new(2);
        let mut items: Vec<usize> = (0..64).collect();
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.for_each(&mut items, |v| panic!("item {v} fails"))
        }));
        // The caller's own share panics, or (when a worker took every item) it reports one.
        assert!(matches!(r, Err(_) | Ok(Err(TeamPanicked))));
        let mut ok = vec![0u8; 64];
        team.for_each(&mut ok, |v| *v = 1).unwrap();
        assert!(ok.iter().all(|&v| v == 1));
    }
}
