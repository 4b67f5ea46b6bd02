//! Faults injected on the sending side, for ensemble tests.
//!
//! `tc netem` is not available on the machines the tests run on (STACK-NOTES.md), so the
//! transport loses, duplicates and delays frames itself, from a seeded generator, so a
//! failing run replays from its seed. Each server mixes its own id into the seed, so
//! servers given the same settings still make different choices.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Fault settings: per-frame probabilities and a delay range, applied by the sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Probability that a frame is dropped, in `[0, 1]`.
    pub drop: f64,
    /// Probability that a frame (not dropped) is sent twice, in `[0, 1]`.
    pub dup: f64,
    /// Each frame waits a delay drawn uniformly from this inclusive range of
    /// milliseconds before it is queued; `None` sends at once. Different delays reorder
    /// frames, as netem's jitter does.
    pub delay_ms: Option<(u64, u64)>,
    /// The generator's seed.
    pub seed: u64,
}

/// Why a fault setting string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault setting {setting:?}: {why}")]
pub struct FaultsError {
    /// The `key=value` item refused.
    pub setting: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl Faults {
    /// No faults: every frame is sent once, at once.
    pub fn none() -> Self {
        Faults {
            drop: 0.0,
            dup: 0.0,
            delay_ms: None,
            seed: 0,
        }
    }

    /// Whether these settings inject nothing (the sender then skips the generator).
    pub fn is_none(&self) -> bool {
        self.drop == 0.0 && self.dup == 0.0 && self.delay_ms.is_none()
    }

    /// Parses `drop=0.01,dup=0.001,delay=5..20,seed=7`: comma-separated `key=value`
    /// items, each optional, any order. `delay` takes `MIN..MAX` (inclusive, ms) or one
    /// number of ms; an empty string is [`Faults::none`].
    pub fn parse(text: &str) -> Result<Self, FaultsError> {
        let mut faults = Faults::none();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |why| FaultsError {
                setting: item.to_string(),
                why,
            };
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| bad("expected key=value"))?;
            let value = value.trim();
            match key.trim() {
                "drop" => faults.drop = probability(value).ok_or_else(|| bad("expected 0..=1"))?,
                "dup" => faults.dup = probability(value).ok_or_else(|| bad("expected 0..=1"))?,
                "delay" => {
                    let (low, high) = match value.split_once("..") {
                        Some((low, high)) => (low.trim(), high.trim()),
                        None => (value, value),
                    };
                    let (Ok(low), Ok(high)) = (low.parse::<u64>(), high.parse::<u64>()) else {
                        return Err(bad("expected MIN..MAX in milliseconds"));
                    };
                    if low > high {
                        return Err(bad("MIN exceeds MAX"));
                    }
                    faults.delay_ms = (high > 0).then_some((low, high));
                }
                "seed" => faults.seed = value.parse().map_err(|_| bad("expected a u64"))?,
                _ => return Err(bad("unknown key (drop, dup, delay, seed)")),
            }
        }
        Ok(faults)
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::none()
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "drop={},dup={},seed={}", self.drop, self.dup, self.seed)?;
        if let Some((low, high)) = self.delay_ms {
            write!(f, ",delay={low}..{high}")?;
        }
        Ok(())
    }
}

fn probability(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|p| (0.0..=1.0).contains(p))
}

/// What happens to one frame: how many copies go out, and after what delay each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fate {
    /// 0 (dropped), 1, or 2 (duplicated).
    pub copies: usize,
    /// The delay of each copy (zero: queued at once).
    pub delays: [Duration; 2],
}

impl Fate {
    /// The fate of every frame when no faults are set.
    pub const DELIVER: Fate = Fate {
        copies: 1,
        delays: [Duration::ZERO; 2],
    };
}

/// The seeded generator that decides each frame's [`Fate`].
#[derive(Debug)]
pub(super) struct FaultGen {
    faults: Faults,
    rng: StdRng,
}

impl FaultGen {
    /// A generator for the server `my_id`.
    pub fn new(faults: Faults, my_id: u64) -> Self {
        // The golden-ratio multiplier spreads consecutive server ids over the seed space.
        let seed = faults.seed ^ my_id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        FaultGen {
            faults,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The fate of the next frame.
    pub fn fate(&mut self) -> Fate {
        if self.faults.is_none() {
            return Fate::DELIVER;
        }
        if self.faults.drop > 0.0 && self.rng.random_bool(self.faults.drop) {
            return Fate {
                copies: 0,
                delays: [Duration::ZERO; 2],
            };
        }
        let copies = if self.faults.dup > 0.0 && self.rng.random_bool(self.faults.dup) {
            2
        } else {
            1
        };
        let mut delays = [Duration::ZERO; 2];
        if let Some((low, high)) = self.faults.delay_ms {
            for d in delays.iter_mut().take(copies) {
                *d = Duration::from_millis(self.rng.random_range(low..=high));
            }
        }
        Fate { copies, delays }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_every_key() {
        let f = Faults::parse("drop=0.01,dup=0.001,delay=5..20,seed=7").expect("parse");
        assert_eq!(
            f,
            Faults {
                drop: 0.01,
                dup: 0.001,
                delay_ms: Some((5, 20)),
                seed: 7
            }
        );
        assert_eq!(Faults::parse(&f.to_string()), Ok(f));
        assert_eq!(
            Faults::parse(" delay = 3 ").expect("parse").delay_ms,
            Some((3, 3))
        );
        assert!(Faults::parse("").expect("parse").is_none());
    }

    #[test]
    fn parse_refuses_nonsense() {
        for bad in [
            "drop=2",
            "dup=-0.1",
            "delay=9..3",
            "delay=x",
            "seed=-1",
            "lose=0.1",
            "drop",
        ] {
            assert!(Faults::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_same_seed_decides_the_same_fates() {
        let f = Faults::parse("drop=0.3,dup=0.3,delay=1..50,seed=11").expect("parse");
        let mut a = FaultGen::new(f.clone(), 2);
        let mut b = FaultGen::new(f.clone(), 2);
        let mut c = FaultGen::new(f, 3);
        let fa: Vec<Fate> = (0..100).map(|_| a.fate()).collect();
        let fb: Vec<Fate> = (0..100).map(|_| b.fate()).collect();
        let fc: Vec<Fate> = (0..100).map(|_| c.fate()).collect();
        assert_eq!(fa, fb);
        assert_ne!(fa, fc, "another server makes other choices");
    }

    #[test]
    fn rates_are_about_what_was_asked() {
        let mut g = FaultGen::new(Faults::parse("drop=0.1,dup=0.2,seed=1").expect("parse"), 1);
        let fates: Vec<Fate> = (0..10_000).map(|_| g.fate()).collect();
        let dropped = fates.iter().filter(|f| f.copies == 0).count();
        let doubled = fates.iter().filter(|f| f.copies == 2).count();
        assert!((800..1200).contains(&dropped), "{dropped}");
        // 20% of the 90% not dropped.
        assert!((1500..2100).contains(&doubled), "{doubled}");
    }
}
