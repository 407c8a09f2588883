//! Synaptic weights on a signed integer grid, as neuromorphic chips store them.
//!
//! Every neuron's incoming weights (one output channel of a spiking layer, one class of
//! the readout) share one scale, `max |w| / (2^(bits−1) − 1)`: its largest weight keeps
//! its value, and the integers are `round(w / scale)` (what a model file then stores).
//! Leaks, thresholds and biases (three numbers per neuron) are left as they are: chips
//! hold those at a higher precision than their synapses, and a neuron's threshold in
//! units of its own scale is what a chip would be given.

use super::network::Network;

/// Fewest and most bits `quantize_network` accepts (2 bits: the levels −1, 0, 1).
pub const BITS: std::ops::RangeInclusive<u32> = 2..=16;

/// How far the weights moved: over every weight of what was quantized.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuantStats {
    /// Weights rounded.
    pub weights: usize,
    /// Sum of squared changes, and of squared weights (for the relative error).
    pub sq_change: f64,
    pub sq_weight: f64,
}

impl QuantStats {
    /// Root-mean-square change relative to the weights' root mean square.
    pub fn relative_rms_error(&self) -> f64 {
        if self.sq_weight > 0.0 {
            (self.sq_change / self.sq_weight).sqrt()
        } else {
            0.0
        }
    }

    pub fn add(&mut self, other: QuantStats) {
        self.weights += other.weights;
        self.sq_change += other.sq_change;
        self.sq_weight += other.sq_weight;
    }
}

/// Rounds a weight matrix whose output index runs fastest (`w[j · n_out + o]`: the
/// spiking layers' tap-major `[k][in][out]` and the readout's `[in][out]`) onto a grid of
/// `2^(bits−1) − 1` levels each side of zero, one scale per output.
pub fn quantize_columns(w: &mut [f32], n_out: usize, bits: u32) -> QuantStats {
    assert!(
        n_out > 0 && w.len().is_multiple_of(n_out),
        "not a matrix of {n_out} columns"
    );
    let scale = column_scales(w, n_out, bits);
    let mut stats = QuantStats {
        weights: w.len(),
        ..QuantStats::default()
    };
    for row in w.chunks_exact_mut(n_out) {
        for (x, &s) in row.iter_mut().zip(&scale) {
            // A neuron whose weights are all zero keeps them.
            let q = if s > 0.0 { (*x / s).round() * s } else { *x };
            stats.sq_change += f64::from(q - *x).powi(2);
            stats.sq_weight += f64::from(*x).powi(2);
            *x = q;
        }
    }
    stats
}

/// One scale per output of a matrix (output index fastest): its largest |w| over the
/// grid's levels on each side of zero.
fn column_scales(w: &[f32], n_out: usize, bits: u32) -> Vec<f32> {
    assert!(BITS.contains(&bits), "bits out of range: {bits}");
    let levels = ((1u32 << (bits - 1)) - 1) as f32;
    let mut max_abs = vec![0f32; n_out];
    for row in w.chunks_exact(n_out) {
        for (m, x) in max_abs.iter_mut().zip(row) {
            *m = m.max(x.abs());
        }
    }
    max_abs.iter().map(|m| m / levels).collect()
}

/// Every synaptic weight of the network (spiking layers and readout) on a `bits` grid.
pub fn quantize_network(net: &mut Network, bits: u32) -> QuantStats {
    let mut stats = QuantStats::default();
    for l in &mut net.layers {
        stats.add(quantize_columns(&mut l.w, l.c_out, bits));
    }
    let r = &mut net.readout;
    stats.add(quantize_columns(&mut r.w, r.n_classes, bits));
    stats
}

/// The fewest bits whose grid (one scale per output, as `quantize_columns` sets it)
/// holds every weight of the matrix to within float rounding, or `None` beyond 16.
pub fn bits_of_columns(w: &[f32], n_out: usize) -> Option<u32> {
    BITS.clone().find(|&b| to_integers(w, n_out, b).is_some())
}

/// The integers and per-output scales of a matrix (output index fastest) whose weights
/// lie on a `bits` grid, `w = q · scale` to a float's last digit; `None` when one does
/// not. What a chip, or a model file, stores.
pub fn to_integers(w: &[f32], n_out: usize, bits: u32) -> Option<(Vec<i16>, Vec<f32>)> {
    let scale = column_scales(w, n_out, bits);
    let mut q = Vec::with_capacity(w.len());
    for row in w.chunks_exact(n_out) {
        for (x, &s) in row.iter().zip(&scale) {
            let v = if s > 0.0 { x / s } else { 0.0 };
            // A float's rounding grows with the integer: at 16 bits (32,767) it reaches
            // a few thousandths of a step.
            if (v - v.round()).abs() > 1e-3 + v.abs() * 1e-6 {
                return None;
            }
            q.push(v.round() as i16);
        }
    }
    Some((q, scale))
}

/// Weights from integers and per-output scales, the output index along the axis whose
/// entries lie `stride` apart (`q.len()` a multiple of `stride · scale.len()`).
pub fn from_integers(q: &[i16], scale: &[f32], stride: usize) -> Vec<f32> {
    let n = scale.len();
    q.iter()
        .enumerate()
        .map(|(i, &v)| f32::from(v) * scale[(i / stride) % n])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;
    use crate::snn::random_network;

    #[test]
    fn each_column_takes_at_most_its_levels_and_keeps_its_largest_weight() {
        // Two outputs: column 0 spans ±1, column 1 ±0.01.
        let mut w = vec![1.0, 0.01, -0.3, -0.004, 0.51, 0.0026, -1.0, 0.007];
        let before = w.clone();
        quantize_columns(&mut w, 2, 3); // levels −3..3
        assert_eq!(w[0], 1.0);
        assert_eq!(w[6], -1.0);
        assert_eq!(w[1], 0.01);
        for (o, scale) in [(0, 1.0 / 3.0), (1, 0.01 / 3.0)] {
            for j in 0..4 {
                let q = w[j * 2 + o] / scale;
                assert!((q - q.round()).abs() < 1e-4, "{q} not an integer");
                assert!(q.round().abs() <= 3.0);
                assert!((w[j * 2 + o] - before[j * 2 + o]).abs() <= scale / 2.0 + 1e-7);
            }
        }
    }

    #[test]
    fn quantizing_twice_changes_nothing_and_more_bits_err_less() {
        let cfg = NetworkConfig {
            channels: vec![16, 16],
            dilations: vec![1, 2],
            ..NetworkConfig::default()
        };
        let net = random_network(&cfg, 40, 12, 3);
        let mut last = f64::INFINITY;
        for bits in [3, 4, 6, 8, 12] {
            let mut q = net.clone();
            let s = quantize_network(&mut q, bits);
            assert!(s.relative_rms_error() < last, "{bits} bits");
            last = s.relative_rms_error();
            let once = q.clone();
            // Again: the same grid, the same weights (to a float's last digit).
            assert!(quantize_network(&mut q, bits).relative_rms_error() < 1e-6);
            for (a, b) in q.layers.iter().zip(&once.layers) {
                assert_eq!(
                    bits_of_columns(&a.w, a.c_out),
                    bits_of_columns(&b.w, b.c_out)
                );
                assert!(bits_of_columns(&a.w, a.c_out).unwrap() <= bits);
            }
            assert!(bits_of_columns(&q.readout.w, q.readout.n_classes).unwrap() <= bits);
        }
        assert!(last < 1e-3);
    }

    #[test]
    fn integers_and_scales_give_the_weights_back() {
        let mut w = vec![0.9, -0.02, 0.1, 0.013, -0.46, 0.0];
        quantize_columns(&mut w, 2, 4);
        let (q, scale) = to_integers(&w, 2, 4).unwrap();
        assert_eq!(q, vec![7, -7, 1, 5, -4, 0]);
        let back = from_integers(&q, &scale, 1);
        for (a, b) in back.iter().zip(&w) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-3), "{a} {b}");
        }
        // Off the grid: no integers.
        assert!(to_integers(&[0.9, 0.5, 0.31, 0.2], 2, 4).is_none());
        // The output index slowest (stride 3: a [2][3] matrix of two outputs).
        let back = from_integers(&[1, 2, 3, -1, -2, -3], &[0.5, 2.0], 3);
        assert_eq!(back, vec![0.5, 1.0, 1.5, -2.0, -4.0, -6.0]);
    }

    #[test]
    fn every_width_up_to_16_bits_is_found_again() {
        let cfg = NetworkConfig::default();
        for bits in [4, 8, 12, 16] {
            let mut net = random_network(&cfg, 40, 12, u64::from(bits));
            quantize_network(&mut net, bits);
            for l in &net.layers {
                assert_eq!(bits_of_columns(&l.w, l.c_out), Some(bits));
            }
            let r = &net.readout;
            assert_eq!(bits_of_columns(&r.w, r.n_classes), Some(bits));
        }
    }

    #[test]
    fn a_silent_neuron_keeps_its_zero_weights() {
        let mut w = vec![0.0, 0.5, 0.0, -0.2];
        let s = quantize_columns(&mut w, 2, 2);
        assert_eq!(w, vec![0.0, 0.5, 0.0, 0.0]);
        assert_eq!(bits_of_columns(&w, 2), Some(2));
        assert_eq!(s.weights, 4);
    }
}
