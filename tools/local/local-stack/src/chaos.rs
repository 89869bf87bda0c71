//! Process-kill fault injection for chaos runs (`up --kill-every 1.5s --seed 7`): every interval
//! one process of a function picked at random is SIGKILLed, whatever it is doing (idle,
//! mid-invocation or starting). The choices come from a seeded generator, so a run's sequence
//! of picks can be replayed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::runtime::FunctionPool;

/// A small seeded generator (xorshift64*): reproducible picks without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33;
        usize::try_from(x).unwrap_or(0) % n.max(1)
    }
}

/// Kills a random function process every `every`.
#[derive(Debug)]
pub struct Killer {
    /// The functions to pick from, in a stable order (by binary name).
    pub pools: Vec<Arc<FunctionPool>>,
    pub every: Duration,
    pub seed: u64,
    /// Processes killed so far.
    pub killed: Arc<AtomicUsize>,
}

impl Killer {
    /// Kills until aborted.
    pub async fn run(self) {
        let mut rng = Rng::new(self.seed);
        loop {
            tokio::time::sleep(self.every).await;
            let Some(pool) = self.pools.get(rng.below(self.pools.len())) else {
                continue;
            };
            let pids = pool.pids();
            let Some(pid) = pids.get(rng.below(pids.len())) else {
                continue;
            };
            let killed = tokio::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .await
                .is_ok_and(|s| s.success());
            if killed {
                let n = self.killed.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!(
                    "local-stack: chaos: killed {} process {pid} ({n} so far)",
                    pool.spec().name
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_picks_and_another_seed_others() {
        let picks = |seed| {
            let mut r = Rng::new(seed);
            (0..32).map(|_| r.below(9)).collect::<Vec<_>>()
        };
        assert_eq!(picks(7), picks(7));
        assert_ne!(picks(7), picks(8));
        assert!(picks(7).iter().all(|p| *p < 9));
        assert!(picks(0).iter().any(|p| *p != 0), "seed 0 still varies");
    }
}
