//! Several networks of the same shape, trained apart (different seeds), voting by their
//! mean class scores frame by frame.
//!
//! Why: a spiking network is chaotic. One frame of different context before a clip moves
//! a fifth of the last layer's spikes and flips a few percent of one network's decisions,
//! and independently trained members flip on different clips, so their mean decides the
//! same way inside a stream and alone far more often (and is more accurate). Cost and
//! state grow linearly with the members; each still fires at its few Hz.

use super::network::{Mode, Network, NetworkState};

#[derive(Debug, Clone)]
pub struct Ensemble {
    /// At least one; all with the same input channels and classes.
    pub members: Vec<Network>,
}

/// The stream state of every member plus the mean scores of the latest frame.
#[derive(Debug, Clone)]
pub struct EnsembleState {
    pub members: Vec<NetworkState>,
    scores: Vec<f32>,
}

impl EnsembleState {
    /// Bytes of state (constant over a stream's life).
    pub fn size_bytes(&self) -> usize {
        self.members.iter().map(|s| s.size_bytes()).sum::<usize>() + self.scores.len() * 4
    }

    /// Spikes per layer index, summed over the members, since the last reset.
    pub fn spike_counts(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.members[0].spike_counts.len()];
        for s in &self.members {
            out.iter_mut()
                .zip(&s.spike_counts)
                .for_each(|(o, c)| *o += c);
        }
        out
    }

    /// Synaptic operations of all members since the last reset.
    pub fn synops(&self) -> u64 {
        self.members.iter().map(|s| s.synops).sum()
    }

    pub fn frames(&self) -> u64 {
        self.members[0].frames
    }
}

impl Ensemble {
    pub fn single(net: Network) -> Self {
        Ensemble { members: vec![net] }
    }

    /// The first member: shapes and configuration common to all.
    pub fn first(&self) -> &Network {
        &self.members[0]
    }

    /// The first member, by value (training continues one network).
    pub fn into_first(self) -> Network {
        self.members
            .into_iter()
            .next()
            .expect("an ensemble has a member")
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn n_classes(&self) -> usize {
        self.first().n_classes()
    }

    /// Spiking neurons per layer index, over all members.
    pub fn neurons_per_layer(&self) -> Vec<usize> {
        let mut out = vec![0; self.first().layers.len()];
        for m in &self.members {
            out.iter_mut()
                .zip(&m.layers)
                .for_each(|(o, l)| *o += l.c_out);
        }
        out
    }

    pub fn new_state(&self) -> EnsembleState {
        EnsembleState {
            members: self.members.iter().map(|m| m.new_state()).collect(),
            scores: vec![0.0; self.n_classes()],
        }
    }

    /// Advances every member one frame; returns the mean per-frame class scores.
    pub fn step<'s>(&self, st: &'s mut EnsembleState, input: &[f32], mode: Mode) -> &'s [f32] {
        let k = self.members.len() as f32;
        st.scores.iter_mut().for_each(|s| *s = 0.0);
        for (m, ms) in self.members.iter().zip(st.members.iter_mut()) {
            let o = m.step(ms, input, mode);
            st.scores.iter_mut().zip(o).for_each(|(s, v)| *s += v / k);
        }
        &st.scores
    }

    /// A whole clip from fresh states: the mean of the members' clip logits (the decision
    /// mean is linear, so this equals stepping the ensemble) and the final states.
    pub fn forward_clip(&self, input: &[f32], mode: Mode) -> (Vec<f32>, EnsembleState) {
        let k = self.members.len() as f32;
        let mut sum = vec![0f32; self.n_classes()];
        let mut states = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let (l, st) = m.forward_clip(input, mode);
            sum.iter_mut().zip(l).for_each(|(s, v)| *s += v / k);
            states.push(st);
        }
        let n = sum.len();
        (
            sum,
            EnsembleState {
                members: states,
                scores: vec![0.0; n],
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;
    use crate::snn::random_network;

    #[test]
    fn the_ensemble_scores_are_the_mean_of_its_members_frame_by_frame() {
        let cfg = NetworkConfig::default();
        let nets: Vec<Network> = (0..3).map(|s| random_network(&cfg, 8, 5, s)).collect();
        let e = Ensemble {
            members: nets.clone(),
        };
        let mut es = e.new_state();
        let mut ss: Vec<NetworkState> = nets.iter().map(|n| n.new_state()).collect();
        let mut rng = crate::util::Rng::new(7);
        for _ in 0..40 {
            let x: Vec<f32> = (0..8).map(|_| rng.uniform() * 2.0).collect();
            let got = e.step(&mut es, &x, Mode::Event).to_vec();
            let mut want = vec![0f32; 5];
            for (n, s) in nets.iter().zip(ss.iter_mut()) {
                want.iter_mut()
                    .zip(n.step(s, &x, Mode::Event))
                    .for_each(|(w, v)| *w += v / 3.0);
            }
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        }
        let per_member: u64 = ss.iter().map(|s| s.spike_counts.iter().sum::<u64>()).sum();
        assert_eq!(es.spike_counts().iter().sum::<u64>(), per_member);
        assert!(
            per_member > 0,
            "random members never fired: the test shows nothing"
        );
        assert_eq!(e.neurons_per_layer()[0], 3 * nets[0].layers[0].c_out);
    }
}
