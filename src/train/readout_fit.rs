//! The readout of a network with frozen spiking layers, fitted directly: with the
//! layers fixed, the mean leaky readout is a linear function of time-weighted spike
//! counts, so softmax regression on those features is exact, and takes seconds.

use std::collections::HashSet;

use crate::eval::argmax;
use crate::features::MelFrame;
use crate::model::Model;
use crate::snn::{Mode, Network, Readout};
use crate::util::Rng;

/// For each ensemble member, its distinct readout leaks and, per class, which of them
/// the class reads (features are computed once per distinct leak).
#[derive(Debug, Clone)]
pub struct FeatureSets {
    pub betas: Vec<Vec<f32>>,
    pub index: Vec<Vec<usize>>,
}

impl FeatureSets {
    pub fn of(model: &Model) -> Self {
        let mut betas = Vec::new();
        let mut index = Vec::new();
        for m in &model.net.members {
            let mut bs: Vec<f32> = Vec::new();
            let ix = m
                .readout
                .beta
                .iter()
                .map(|b| match bs.iter().position(|x| x == b) {
                    Some(i) => i,
                    None => {
                        bs.push(*b);
                        bs.len() - 1
                    }
                })
                .collect();
            betas.push(bs);
            index.push(ix);
        }
        FeatureSets { betas, index }
    }
}

/// Time-weighted spike counts of the last spiking layer: the readout's input, per member
/// one vector per distinct readout leak. The mean leaky readout over decision frames
/// `t0..T` weighs the spikes of frame `u` by `(β^max(t0−u, 0) − β^(T−u)) / (T − t0)`.
pub fn features(
    model: &Model,
    mf: &mut MelFrame,
    x: &[f32],
    sets: &FeatureSets,
) -> Vec<Vec<Vec<f32>>> {
    let (input, _) = model.encode(mf, x);
    model
        .net
        .members
        .iter()
        .zip(&sets.betas)
        .map(|(net, betas)| member_features(net, &input, betas))
        .collect()
}

fn member_features(net: &Network, input: &[f32], betas: &[f32]) -> Vec<Vec<f32>> {
    let c_in = net.layers[0].c_in;
    let t = input.len() / c_in;
    let mut st = net.new_state();
    let t0 = net.config.decision_start(0, t);
    let last = net.layers.len() - 1;
    let c = net.readout.c_in;
    // One extra entry per set: Σ_t weights[t], the factor the bias gets.
    let mut out = vec![vec![0f32; c + 1]; betas.len()];
    for (ti, frame) in input.chunks_exact(c_in).enumerate() {
        net.step(&mut st, frame, Mode::Event);
        let spikes = st.layer_output(last);
        for (bi, &b) in betas.iter().enumerate() {
            let w =
                (b.powi(t0.saturating_sub(ti) as i32) - b.powi((t - ti) as i32)) / (t - t0) as f32;
            for (o, s) in out[bi].iter_mut().zip(spikes) {
                *o += w * s;
            }
            out[bi][c] += w;
        }
    }
    out
}

pub struct Sample {
    /// `[member][leak set][channel + 1]`, see `features`.
    pub feats: Vec<Vec<Vec<f32>>>,
    pub label: usize,
}

/// Softmax regression of the readout rows `w[c]` (`[in]`) and biases of ensemble member
/// `member` on its fixed features (members are fitted apart, each as a whole classifier).
#[allow(clippy::too_many_arguments)]
pub fn fit_readout(
    readout: &mut Readout,
    trainable: &[bool],
    beta_index: &[usize],
    member: usize,
    train: &[Sample],
    epochs: usize,
    scale: f32,
    rng: &mut Rng,
) {
    let (n_in, n_cls) = (readout.c_in, readout.n_classes);
    // Work in row-major [class][in] and convert back.
    let mut w: Vec<f32> = (0..n_cls * n_in)
        .map(|k| readout.w[(k % n_in) * n_cls + k / n_in])
        .collect();
    let mut b = readout.bias.clone();
    let (mut mw, mut vw) = (vec![0f32; w.len()], vec![0f32; w.len()]);
    let (mut mb, mut vb) = (vec![0f32; n_cls], vec![0f32; n_cls]);
    let lr = 0.01f32;
    let (b1, b2) = (0.9f32, 0.999f32);
    // Class-balanced weights so a few new examples count as much as many replays.
    let mut counts = vec![0usize; n_cls];
    train.iter().for_each(|s| counts[s.label] += 1);
    let cw: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c > 0 {
                train.len() as f32 / (n_cls as f32 * c as f32)
            } else {
                0.0
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut step = 0i32;
    let batch = 32;
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let mut gw = vec![0f32; w.len()];
            let mut gb = vec![0f32; n_cls];
            for &i in chunk {
                let s = &train[i];
                // logits_c = scale · (w_c · f_{β(c)} + b_c · Σ_t weights[t])
                let logits: Vec<f32> = (0..n_cls)
                    .map(|c| {
                        let f = &s.feats[member][beta_index[c]];
                        scale
                            * (w[c * n_in..(c + 1) * n_in]
                                .iter()
                                .zip(f)
                                .map(|(a, x)| a * x)
                                .sum::<f32>()
                                + b[c] * f[n_in])
                    })
                    .collect();
                let p = crate::model::softmax(&logits);
                for c in 0..n_cls {
                    let g = cw[s.label] * scale * (p[c] - (c == s.label) as u8 as f32)
                        / chunk.len() as f32;
                    let f = &s.feats[member][beta_index[c]];
                    gb[c] += g * f[n_in];
                    for (gw, x) in gw[c * n_in..(c + 1) * n_in].iter_mut().zip(f) {
                        *gw += g * x;
                    }
                }
            }
            step += 1;
            let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
            for k in 0..w.len() {
                if !trainable[k / n_in] {
                    continue;
                }
                let g = gw[k] + 1e-4 * w[k];
                mw[k] = b1 * mw[k] + (1.0 - b1) * g;
                vw[k] = b2 * vw[k] + (1.0 - b2) * g * g;
                w[k] -= lr * (mw[k] / c1) / ((vw[k] / c2).sqrt() + 1e-8);
            }
            for c in (0..n_cls).filter(|&c| trainable[c]) {
                mb[c] = b1 * mb[c] + (1.0 - b1) * gb[c];
                vb[c] = b2 * vb[c] + (1.0 - b2) * gb[c] * gb[c];
                b[c] -= lr * (mb[c] / c1) / ((vb[c] / c2).sqrt() + 1e-8);
            }
        }
    }
    for c in 0..n_cls {
        for i in 0..n_in {
            readout.w[i * n_cls + c] = w[c * n_in + i];
        }
    }
    readout.bias = b;
}

/// Clip logits (before the logit scale) of the ensemble: the mean over members.
pub fn logits(model: &Model, s: &Sample, sets: &FeatureSets) -> Vec<f32> {
    let k = model.net.len() as f32;
    let mut out = vec![0f32; model.n_labels()];
    for (m, net) in model.net.members.iter().enumerate() {
        let r = &net.readout;
        for (c, o) in out.iter_mut().enumerate() {
            let f = &s.feats[m][sets.index[m][c]];
            let z = (0..r.c_in)
                .map(|i| r.w[i * r.n_classes + c] * f[i])
                .sum::<f32>()
                + r.bias[c] * f[r.c_in];
            *o += z / k;
        }
    }
    out
}

pub fn predict(model: &Model, s: &Sample, sets: &FeatureSets) -> usize {
    argmax(&logits(model, s, sets))
}

/// Lowers the new classes' biases (all by the same logit offset) until at most
/// `max_drop` of the held-out old-class clips that the old rows alone get right are taken
/// over by a new word. Returns the offset applied (0 when none was needed).
pub fn guard_old_classes(
    model: &mut Model,
    sets: &FeatureSets,
    old_clips: &[&Sample],
    new_idx: &HashSet<usize>,
    max_drop: f64,
) -> f32 {
    // How far above the true class the best new word is, for each clip the old rows get right.
    let mut over: Vec<f32> = old_clips
        .iter()
        .filter_map(|s| {
            let z = logits(model, s, sets);
            let best = |new: bool| {
                z.iter()
                    .enumerate()
                    .filter(|(c, _)| new_idx.contains(c) == new)
                    .map(|(c, v)| (c, *v))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
            };
            let (old_c, _) = best(false)?;
            let (_, new_z) = best(true)?;
            (old_c == s.label).then_some(new_z - z[s.label])
        })
        .collect();
    over.sort_by(|a, b| b.total_cmp(a));
    let allowed = (max_drop * old_clips.len() as f64).floor() as usize;
    let shift = match over.get(allowed) {
        Some(&d) if d >= 0.0 => d + 1e-4,
        _ => return 0.0,
    };
    // logit_c = w_c·f + b_c·Σweights: a bias change moves the logit by Σweights times it;
    // moving every member's logit by `shift` moves their mean by it.
    for (m, net) in model.net.members.iter_mut().enumerate() {
        let r = &mut net.readout;
        for &c in new_idx {
            let sum_w = old_clips[0].feats[m][sets.index[m][c]][r.c_in].max(1e-6);
            r.bias[c] -= shift / sum_w;
        }
    }
    shift
}
