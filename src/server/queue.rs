//! One model, many users: jobs wait in a fair queue (round-robin across users, bounded)
//! and run on one thread per model slot, each through its own handle on the shared model
//! ([`crate::backend::shared`]), which batches their replies and keeps each
//! conversation's KV cache between its turns.

use crate::backend::shared::{ModelHandle, SharedModel};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What a job does with the model.
pub(crate) type Work = Box<dyn FnOnce(&mut Worker) + Send>;

/// One queued piece of model work for a user.
pub(crate) struct Job {
    /// Whose it is (the queue is fair across users).
    pub user: String,
    /// Set when the client went away: the job is skipped, or its generation stops.
    pub cancel: Arc<AtomicBool>,
    /// Told the job's place in the queue whenever it changes (0: running now).
    pub position: Box<dyn Fn(usize) + Send>,
    /// The work.
    pub work: Work,
}

/// The queue is full.
#[derive(Debug)]
pub(crate) struct Full;

#[derive(Default)]
struct State {
    per_user: HashMap<String, VecDeque<Job>>,
    /// Users with queued jobs, in the order they are served next.
    order: VecDeque<String>,
    len: usize,
    closed: bool,
}

impl State {
    /// Every queued job's place, in the order it will run (1 = next).
    fn announce(&self) {
        let mut idx: HashMap<&str, usize> = HashMap::new();
        let mut pos = 1;
        let mut left = self.len;
        while left > 0 {
            let before = left;
            for u in &self.order {
                let i = idx.entry(u.as_str()).or_insert(0);
                if let Some(job) = self.per_user.get(u).and_then(|q| q.get(*i)) {
                    (job.position)(pos);
                    pos += 1;
                    left -= 1;
                    *i += 1;
                }
            }
            if left == before {
                break;
            }
        }
    }
}

/// A bounded queue, served round-robin across users.
pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue { state: Mutex::default(), ready: Condvar::new(), capacity: capacity.max(1) }
    }

    /// Queues `job`; a full or closed queue refuses it.
    pub fn push(&self, job: Job) -> Result<(), Full> {
        let mut s = self.state.lock().map_err(|_| Full)?;
        if s.closed || s.len >= self.capacity {
            return Err(Full);
        }
        let user = job.user.clone();
        let q = s.per_user.entry(user.clone()).or_default();
        q.push_back(job);
        if q.len() == 1 {
            s.order.push_back(user);
        }
        s.len += 1;
        s.announce();
        self.ready.notify_one();
        Ok(())
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.len).unwrap_or(0)
    }

    /// The next job (the next user's oldest), waiting for one; None once closed.
    fn pop(&self) -> Option<Job> {
        let mut s = self.state.lock().ok()?;
        loop {
            if s.closed {
                return None;
            }
            if let Some(user) = s.order.pop_front() {
                let q = s.per_user.get_mut(&user)?;
                let job = q.pop_front()?;
                if q.is_empty() {
                    s.per_user.remove(&user);
                } else {
                    s.order.push_back(user);
                }
                s.len -= 1;
                s.announce();
                return Some(job);
            }
            s = self.ready.wait(s).ok()?;
        }
    }

    /// Stops taking jobs; those still queued are dropped (their clients see the stream
    /// end), the running one finishes.
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
            for (_, q) in s.per_user.drain() {
                for job in q {
                    job.cancel.store(true, Ordering::Relaxed);
                }
            }
            s.order.clear();
            s.len = 0;
        }
        self.ready.notify_all();
    }
}

/// What a job works with: its own handle on the shared model.
pub(crate) struct Worker {
    /// The model, as this job's [`ChatBackend`](crate::backend::ChatBackend).
    pub model: ModelHandle,
}

impl Worker {
    /// The conversation the job's model requests belong to (its cache is kept between its
    /// turns); `None` for work that is no conversation's, such as a critique.
    pub fn enter(&mut self, key: Option<&str>) {
        self.model.enter(key);
    }

    /// Forgets conversation `key`'s cache (it ended or restarted).
    pub fn forget(&mut self, key: &str) {
        self.model.forget(key);
    }
}

/// Starts one thread per slot of `model`: each runs the queue's jobs, one at a time, until
/// the queue closes. With several slots, several users' jobs run at once and the model
/// decodes their replies together.
pub(crate) fn spawn(queue: &Arc<Queue>, model: &SharedModel) -> Vec<std::thread::JoinHandle<()>> {
    (0..model.slots())
        .map(|i| {
            let (queue, mut worker) = (queue.clone(), Worker { model: model.handle() });
            std::thread::Builder::new()
                .name(format!("upward-jobs-{i}"))
                .spawn(move || {
                    while let Some(job) = queue.pop() {
                        if job.cancel.load(Ordering::Relaxed) {
                            continue;
                        }
                        (job.position)(0);
                        let work = job.work;
                        let run = std::panic::AssertUnwindSafe(|| work(&mut worker));
                        if std::panic::catch_unwind(run).is_err() {
                            eprintln!("upward serve: a model job failed");
                            worker.enter(None);
                        }
                    }
                })
                .expect("spawning a job thread")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn job(user: &str, tx: &mpsc::Sender<String>, tag: &str) -> Job {
        let (tx, tag) = (tx.clone(), tag.to_string());
        Job {
            user: user.into(),
            cancel: Arc::default(),
            position: Box::new(|_| {}),
            work: Box::new(move |_| tx.send(tag).unwrap()),
        }
    }

    /// One user's burst does not starve another: jobs alternate between users.
    #[test]
    fn the_queue_is_round_robin_across_users_and_bounded() {
        let q = Queue::new(5);
        let (tx, rx) = mpsc::channel();
        for tag in ["a1", "a2", "a3"] {
            q.push(job("a", &tx, tag)).unwrap();
        }
        q.push(job("b", &tx, "b1")).unwrap();
        q.push(job("c", &tx, "c1")).unwrap();
        assert!(q.push(job("d", &tx, "d1")).is_err(), "bounded");
        let order: Vec<String> = (0..5).map(|_| q.pop().unwrap().user).collect();
        assert_eq!(order, ["a", "b", "c", "a", "a"]);
        drop(rx);
    }

    #[test]
    fn positions_follow_the_round_robin_order() {
        let q = Queue::new(10);
        let seen = Arc::new(Mutex::new(HashMap::new()));
        for (user, tag) in [("a", "a1"), ("a", "a2"), ("b", "b1")] {
            let seen = seen.clone();
            let tag = tag.to_string();
            q.push(Job {
                user: user.into(),
                cancel: Arc::default(),
                position: Box::new(move |p| {
                    seen.lock().unwrap().insert(tag.clone(), p);
                }),
                work: Box::new(|_| {}),
            })
            .unwrap();
        }
        let s = seen.lock().unwrap().clone();
        assert_eq!((s["a1"], s["b1"], s["a2"]), (1, 2, 3));
    }
}
