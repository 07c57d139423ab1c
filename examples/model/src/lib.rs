//! A stateful service: a "model" (here a table of smallest prime factors)
//! built once per container by `enter`, then queried many times.

use std::time::Instant;

use modal_runtime::app;

/// Factorises numbers with a precomputed table of smallest prime factors.
#[app::cls(scaledown_window = 30, max_containers = 2)]
pub struct Factorizer {
    /// A label for this table, shown in the container's log.
    #[app::parameter]
    name: String,
    /// The table covers `0..size`.
    #[app::parameter(default = 2_000_000)]
    size: u64,
    /// `smallest[n]`: the smallest prime factor of `n` (0 for 0 and 1).
    smallest: Vec<u32>,
}

#[app::cls]
impl Factorizer {
    /// Builds the table: the expensive part, once per container.
    #[app::enter]
    fn load(&mut self) -> Result<(), String> {
        let size = usize::try_from(self.size)
            .ok()
            .filter(|s| *s <= 100_000_000)
            .ok_or_else(|| format!("a table of {} entries is too large", self.size))?;
        let started = Instant::now();
        let mut smallest = vec![0_u32; size];
        for n in 2..size {
            if smallest[n] == 0 {
                for multiple in (n..size).step_by(n) {
                    if smallest[multiple] == 0 {
                        smallest[multiple] = n as u32;
                    }
                }
            }
        }
        self.smallest = smallest;
        println!(
            "table `{}` of {} entries built in {:?}",
            self.name,
            self.size,
            started.elapsed()
        );
        Ok(())
    }

    /// Says goodbye when the container stops.
    #[app::exit]
    fn unload(&mut self) {
        println!("table `{}` unloaded", self.name);
    }

    /// The prime factors of `n`, smallest first.
    #[app::method]
    fn factorize(&self, n: u64) -> Result<Vec<u64>, String> {
        if n < 2 || n >= self.size {
            return Err(format!(
                "{n} is outside the table `{}` (2 to {})",
                self.name,
                self.size - 1
            ));
        }
        let mut factors = Vec::new();
        let mut rest = n as usize;
        while rest > 1 {
            let p = self.smallest[rest] as usize;
            factors.push(p as u64);
            rest /= p;
        }
        Ok(factors)
    }

    /// How many primes are below `limit`.
    #[app::method]
    fn count_primes(&self, limit: u64) -> u64 {
        let limit = limit.min(self.size) as usize;
        (2..limit)
            .filter(|&n| self.smallest[n] as usize == n)
            .count() as u64
    }
}
