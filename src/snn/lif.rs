//! The leaky integrate-and-fire neuron as a pure step function (norse style): the
//! stateful layers in `network` and the burn training graph both follow it exactly.
//!
//! `v[t] = β·v[t−1] + (1−β)·I[t] − reset`, spike `s[t] = H(v[t] − θ)`, where the reset
//! applied at `t` comes from the spike at `t−1` (subtract θ, or zero the potential).

use crate::config::Reset;

/// One time step of one neuron: returns the new potential and whether it spiked.
#[inline(always)]
pub fn lif_step(
    v: f32,
    spiked: bool,
    input: f32,
    beta: f32,
    threshold: f32,
    reset: Reset,
) -> (f32, bool) {
    let leaky = beta * v + (1.0 - beta) * input;
    let v = match (reset, spiked) {
        (_, false) => leaky,
        (Reset::Subtract, true) => leaky - threshold,
        (Reset::Zero, true) => 0.0,
    };
    (v, v > threshold)
}

/// The non-spiking leaky integrator of the readout.
#[inline(always)]
pub fn leaky_step(v: f32, input: f32, beta: f32) -> f32 {
    beta * v + (1.0 - beta) * input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_trace() {
        // β = 0.5, θ = 1, constant input 3: v = 1.5 (spike), 0.5*1.5+1.5-1 = 1.25 (spike),
        // 0.625+1.5-1 = 1.125 (spike), 0.5625+1.5-1 = 1.0625 (spike)...
        let (mut v, mut s) = (0.0, false);
        let mut trace = Vec::new();
        for _ in 0..4 {
            (v, s) = lif_step(v, s, 3.0, 0.5, 1.0, Reset::Subtract);
            trace.push((v, s));
        }
        let want = [(1.5, true), (1.25, true), (1.125, true), (1.0625, true)];
        for ((v, s), (wv, ws)) in trace.iter().zip(want) {
            assert!((v - wv).abs() < 1e-6);
            assert_eq!(*s, ws);
        }
        // Input 1 with β = 0.5: v → 0.5, 0.75, 0.875... never reaches θ = 1.
        let (mut v, mut s) = (0.0, false);
        for _ in 0..50 {
            (v, s) = lif_step(v, s, 1.0, 0.5, 1.0, Reset::Subtract);
            assert!(!s);
        }
        assert!((v - 1.0).abs() < 1e-6);
    }

    #[test]
    fn zero_reset_clears_the_potential() {
        let (v, s) = lif_step(0.0, false, 4.0, 0.5, 1.0, Reset::Zero);
        assert_eq!((v, s), (2.0, true));
        let (v, s) = lif_step(v, s, 4.0, 0.5, 1.0, Reset::Zero);
        assert_eq!((v, s), (0.0, false));
    }
}
