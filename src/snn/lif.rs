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

/// `lif_step` for every neuron of a layer at once; writes the spikes as 0/1 to `out` and
/// returns how many fired. Free of branches and bounds checks, so it vectorises: the
/// same arithmetic per neuron, the same result bit for bit.
#[inline(always)]
pub fn lif_layer_step(
    v: &mut [f32],
    spiked: &mut [bool],
    out: &mut [f32],
    input: &[f32],
    (beta, threshold): (&[f32], &[f32]),
    reset: Reset,
) -> u64 {
    let n = v.len();
    assert!(spiked.len() == n && out.len() == n && input.len() == n);
    assert!(beta.len() == n && threshold.len() == n);
    let mut fired = 0u64;
    for o in 0..n {
        let (b, th) = (beta[o], threshold[o]);
        let leaky = b * v[o] + (1.0 - b) * input[o];
        let after = match reset {
            Reset::Subtract => leaky - th,
            Reset::Zero => 0.0,
        };
        let nv = if spiked[o] { after } else { leaky };
        let s = nv > th;
        v[o] = nv;
        spiked[o] = s;
        out[o] = s as u8 as f32;
        fired += s as u64;
    }
    fired
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
    fn a_layer_step_is_the_neuron_step_for_each_neuron() {
        let mut rng = crate::util::Rng::new(5);
        let n = 37;
        let beta: Vec<f32> = (0..n).map(|_| rng.range(0.0, 0.99)).collect();
        let th: Vec<f32> = (0..n).map(|_| rng.range(0.2, 2.0)).collect();
        for reset in [Reset::Subtract, Reset::Zero] {
            let (mut v, mut s, mut out) = (vec![0.0f32; n], vec![false; n], vec![0.0f32; n]);
            let (mut v1, mut s1) = (v.clone(), s.clone());
            let mut total = 0;
            for _ in 0..50 {
                let input: Vec<f32> = (0..n).map(|_| rng.range(-1.0, 4.0)).collect();
                let fired = lif_layer_step(&mut v, &mut s, &mut out, &input, (&beta, &th), reset);
                for o in 0..n {
                    (v1[o], s1[o]) = lif_step(v1[o], s1[o], input[o], beta[o], th[o], reset);
                }
                assert_eq!((&v, &s), (&v1, &s1));
                assert_eq!(fired, s.iter().filter(|x| **x).count() as u64);
                assert!(out.iter().zip(&s).all(|(o, s)| *o == *s as u8 as f32));
                total += fired;
            }
            assert!(
                total > 0,
                "the neurons must fire for the test to mean anything"
            );
        }
    }

    #[test]
    fn zero_reset_clears_the_potential() {
        let (v, s) = lif_step(0.0, false, 4.0, 0.5, 1.0, Reset::Zero);
        assert_eq!((v, s), (2.0, true));
        let (v, s) = lif_step(v, s, 4.0, 0.5, 1.0, Reset::Zero);
        assert_eq!((v, s), (0.0, false));
    }
}
