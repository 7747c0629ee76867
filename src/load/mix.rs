//! Picking the next flow by the scenario's weights.

use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;

use crate::scenario::FlowKind;

/// The weighted flow mix of a scenario.
#[derive(Debug, Clone)]
pub struct Mix {
    index: WeightedIndex<u32>,
}

impl Mix {
    /// `weights[FlowKind as usize]`; at least one must be above zero (the scenario checks).
    pub fn new(weights: [u32; FlowKind::COUNT]) -> Mix {
        Mix {
            index: WeightedIndex::new(weights).expect("a validated scenario has a positive weight"),
        }
    }

    pub fn pick(&self, rng: &mut impl Rng) -> FlowKind {
        FlowKind::ALL[self.index.sample(rng)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn follows_the_weights_and_skips_zero() {
        let mix = Mix::new([0, 0, 0, 1, 3, 0, 0, 0]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let picks: Vec<FlowKind> = (0..4000).map(|_| mix.pick(&mut rng)).collect();
        let converse = picks.iter().filter(|k| **k == FlowKind::Converse).count();
        assert!(picks
            .iter()
            .all(|k| matches!(k, FlowKind::Initiate | FlowKind::Converse)));
        assert!((2800..3200).contains(&converse), "{converse}");
    }
}
