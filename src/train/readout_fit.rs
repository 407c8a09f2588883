//! The readout of a network with frozen spiking layers, fitted directly: with the
//! layers fixed, the mean leaky readout is a linear function of time-weighted spike
//! counts, so softmax regression on those features is exact, and takes seconds.

use std::collections::HashSet;

use crate::features::MelFrame;
use crate::model::Model;
use crate::snn::{Mode, Network, Readout};
use crate::util::Rng;
use crate::util::argmax;

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
    features_in_context(model, mf, &[], x, sets)
}

/// As `features`, for the clip `x` heard right after `context` (a whole number of hops of
/// samples), as inside a stream: the decision frames are the clip's, the context only
/// leaves the network in another state.
pub fn features_in_context(
    model: &Model,
    mf: &mut MelFrame,
    context: &[f32],
    x: &[f32],
    sets: &FeatureSets,
) -> Vec<Vec<Vec<f32>>> {
    let hop = model.config.features.hop_length;
    let mut s = Vec::with_capacity(context.len() + x.len());
    s.extend_from_slice(context);
    s.extend_from_slice(x);
    let (input, _) = model.encode(mf, &s);
    model
        .net
        .members
        .iter()
        .zip(&sets.betas)
        .map(|(net, betas)| member_features(net, &input, context.len() / hop, betas))
        .collect()
}

fn member_features(
    net: &Network,
    input: &[f32],
    context_frames: usize,
    betas: &[f32],
) -> Vec<Vec<f32>> {
    let c_in = net.layers[0].c_in;
    let t = input.len() / c_in;
    let t0 = context_frames + net.config.decision_start(0, t - context_frames);
    let mut st = net.new_state();
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

/// Softmax regression of the readouts of all ensemble members at once on fixed features,
/// with Adam. The logits are the members' mean, as the ensemble decides: members fitted
/// apart each become a whole classifier, and the mean of those is not the best mean.
/// Rows of classes that are not `trainable` stay as they are.
pub struct ReadoutFit {
    /// Per member, row-major `[class][in]`, and biases.
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
    adam_w: Vec<(Vec<f32>, Vec<f32>)>,
    adam_b: Vec<(Vec<f32>, Vec<f32>)>,
    step: i32,
    trainable: Vec<bool>,
    class_weight: Vec<f32>,
    index: Vec<Vec<usize>>,
    scale: f32,
    /// Adam's step size (0.01 unless set).
    pub lr: f32,
}

impl ReadoutFit {
    /// `balanced`: weigh classes inversely to their counts in `train` (a few new
    /// examples then count as much as many replays); otherwise every sample counts once.
    pub fn new(
        model: &Model,
        sets: &FeatureSets,
        trainable: &[bool],
        train: &[Sample],
        balanced: bool,
    ) -> Self {
        let readouts: Vec<&Readout> = model.net.members.iter().map(|n| &n.readout).collect();
        Self::from_readouts(
            &readouts,
            model.config.network.logit_scale,
            &sets.index,
            trainable,
            train,
            balanced,
        )
    }

    fn from_readouts(
        readouts: &[&Readout],
        scale: f32,
        index: &[Vec<usize>],
        trainable: &[bool],
        train: &[Sample],
        balanced: bool,
    ) -> Self {
        let n_cls = trainable.len();
        let mut counts = vec![0usize; n_cls];
        train.iter().for_each(|s| counts[s.label] += 1);
        let class_weight = counts
            .iter()
            .map(|&c| match (balanced, c) {
                (_, 0) => 0.0,
                (true, c) => train.len() as f32 / (n_cls as f32 * c as f32),
                (false, _) => 1.0,
            })
            .collect();
        let w: Vec<Vec<f32>> = readouts
            .iter()
            .map(|r| {
                (0..n_cls * r.c_in)
                    .map(|k| r.w[(k % r.c_in) * n_cls + k / r.c_in])
                    .collect()
            })
            .collect();
        let b: Vec<Vec<f32>> = readouts.iter().map(|r| r.bias.clone()).collect();
        let zeros = |v: &Vec<Vec<f32>>| -> Vec<(Vec<f32>, Vec<f32>)> {
            v.iter()
                .map(|x| (vec![0.0; x.len()], vec![0.0; x.len()]))
                .collect()
        };
        ReadoutFit {
            adam_w: zeros(&w),
            adam_b: zeros(&b),
            w,
            b,
            step: 0,
            trainable: trainable.to_vec(),
            class_weight,
            index: index.to_vec(),
            scale,
            lr: 0.01,
        }
    }

    /// One pass over `train` in shuffled mini-batches.
    pub fn epoch(&mut self, train: &[Sample], rng: &mut Rng) {
        let singles: Vec<Vec<usize>> = (0..train.len()).map(|i| vec![i]).collect();
        self.epoch_grouped(train, &singles, 0.0, rng);
    }

    /// One pass over groups of samples of the same clip (the first: the clip alone, the
    /// others: the clip in a context). Besides cross-entropy, `consistency` weighs the
    /// squared distance between each in-context log-probability vector and the clip's
    /// alone: a readout whose decision a context does not move.
    pub fn epoch_grouped(
        &mut self,
        train: &[Sample],
        groups: &[Vec<usize>],
        consistency: f32,
        rng: &mut Rng,
    ) {
        const BATCH: usize = 32;
        let (lr, b1, b2) = (self.lr, 0.9f32, 0.999f32);
        let n_cls = self.trainable.len();
        let mut order: Vec<usize> = (0..groups.len()).collect();
        rng.shuffle(&mut order);
        let batch_groups = (BATCH / groups.first().map_or(1, |g| g.len().max(1))).max(1);
        for chunk in order.chunks(batch_groups) {
            let n_samples: usize = chunk.iter().map(|&g| groups[g].len()).sum();
            let n_pairs = n_samples - chunk.len();
            let mut gw: Vec<Vec<f32>> = self.w.iter().map(|w| vec![0.0; w.len()]).collect();
            let mut gb: Vec<Vec<f32>> = self.b.iter().map(|b| vec![0.0; b.len()]).collect();
            for &g in chunk {
                self.group_gradients(
                    train,
                    &groups[g],
                    (n_samples, n_pairs),
                    consistency,
                    (&mut gw, &mut gb),
                );
            }
            self.step += 1;
            let (c1, c2) = (1.0 - b1.powi(self.step), 1.0 - b2.powi(self.step));
            let adam = |x: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *x -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
            };
            for m in 0..self.w.len() {
                let n_in = self.w[m].len() / n_cls;
                let (mw, vw) = &mut self.adam_w[m];
                for (j, x) in self.w[m].iter_mut().enumerate() {
                    if self.trainable[j / n_in] {
                        let g = gw[m][j] + 1e-4 * *x;
                        adam(x, g, &mut mw[j], &mut vw[j]);
                    }
                }
                let (mb, vb) = &mut self.adam_b[m];
                for (c, x) in self.b[m].iter_mut().enumerate() {
                    if self.trainable[c] {
                        adam(x, gb[m][c], &mut mb[c], &mut vb[c]);
                    }
                }
            }
        }
    }

    /// Adds the gradients of one group's loss: its samples' weighted cross-entropy over
    /// `n.0` samples in the batch, and `consistency` times the mean over `n.1` pairs of
    /// the squared distance between in-context and alone log-probabilities.
    fn group_gradients(
        &self,
        train: &[Sample],
        group: &[usize],
        n: (usize, usize),
        consistency: f32,
        grads: (&mut [Vec<f32>], &mut [Vec<f32>]),
    ) {
        let (n_samples, n_pairs) = n;
        let n_cls = self.trainable.len();
        let probs: Vec<Vec<f32>> = group
            .iter()
            .map(|&i| crate::model::softmax(&self.logits(&train[i])))
            .collect();
        // dLoss/dlogits per sample of the group.
        let mut gz: Vec<Vec<f32>> = group
            .iter()
            .zip(&probs)
            .map(|(&i, p)| {
                let l = train[i].label;
                (0..n_cls)
                    .map(|c| {
                        self.class_weight[l] * (p[c] - (c == l) as u8 as f32) / n_samples as f32
                    })
                    .collect()
            })
            .collect();
        if consistency > 0.0 && n_pairs > 0 {
            // d = log p_a − log p_0; ∂/∂z_a of |d|² is 2(d − p_a Σd), and minus the same
            // with p_0 for the clip alone.
            let k = 2.0 * consistency / n_pairs as f32;
            for a in 1..group.len() {
                let d: Vec<f32> = (0..n_cls)
                    .map(|c| probs[a][c].max(1e-12).ln() - probs[0][c].max(1e-12).ln())
                    .collect();
                let sd: f32 = d.iter().sum();
                for c in 0..n_cls {
                    gz[a][c] += k * (d[c] - probs[a][c] * sd);
                    gz[0][c] -= k * (d[c] - probs[0][c] * sd);
                }
            }
        }
        let (gw, gb) = grads;
        for (&i, gz) in group.iter().zip(&gz) {
            self.backward(&train[i], gz, gw, gb);
        }
    }

    /// logit_c = scale · mean_m (w_mc · f_m + b_mc · Σ_t weights[t])
    fn logits(&self, s: &Sample) -> Vec<f32> {
        let n_cls = self.trainable.len();
        let k = self.w.len() as f32;
        let mut z = vec![0f32; n_cls];
        for (m, (w, b)) in self.w.iter().zip(&self.b).enumerate() {
            let n_in = w.len() / n_cls;
            for (c, z) in z.iter_mut().enumerate() {
                let f = &s.feats[m][self.index[m][c]];
                let dot: f32 = w[c * n_in..(c + 1) * n_in]
                    .iter()
                    .zip(f)
                    .map(|(a, x)| a * x)
                    .sum();
                *z += self.scale * (dot + b[c] * f[n_in]) / k;
            }
        }
        z
    }

    /// Adds the parameter gradients of sample `s` given dLoss/dlogits `gz`.
    fn backward(&self, s: &Sample, gz: &[f32], gw: &mut [Vec<f32>], gb: &mut [Vec<f32>]) {
        let n_cls = self.trainable.len();
        let k = self.w.len() as f32;
        for (c, &g) in gz.iter().enumerate() {
            let g = g * self.scale / k;
            for m in 0..self.w.len() {
                let n_in = self.w[m].len() / n_cls;
                let f = &s.feats[m][self.index[m][c]];
                gb[m][c] += g * f[n_in];
                for (gw, x) in gw[m][c * n_in..(c + 1) * n_in].iter_mut().zip(f) {
                    *gw += g * x;
                }
            }
        }
    }

    /// Writes the fitted rows into `model`'s readouts.
    pub fn apply(&self, model: &mut Model) {
        for ((net, w), b) in model.net.members.iter_mut().zip(&self.w).zip(&self.b) {
            let r = &mut net.readout;
            let n_cls = r.n_classes;
            for c in 0..n_cls {
                for i in 0..r.c_in {
                    r.w[i * n_cls + c] = w[c * r.c_in + i];
                }
            }
            r.bias = b.clone();
        }
    }
}

/// `ReadoutFit` run for `epochs` and written into `model`.
pub fn fit_readouts(
    model: &mut Model,
    sets: &FeatureSets,
    trainable: &[bool],
    train: &[Sample],
    epochs: usize,
    balanced: bool,
    rng: &mut Rng,
) {
    let mut fit = ReadoutFit::new(model, sets, trainable, train, balanced);
    for _ in 0..epochs {
        fit.epoch(train, rng);
    }
    fit.apply(model);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The loss `group_gradients` differentiates, computed directly.
    fn group_loss(
        fit: &ReadoutFit,
        train: &[Sample],
        group: &[usize],
        n: (usize, usize),
        lambda: f32,
    ) -> f64 {
        let lp: Vec<Vec<f64>> = group
            .iter()
            .map(|&i| {
                let p = crate::model::softmax(&fit.logits(&train[i]));
                p.iter().map(|v| (*v as f64).ln()).collect()
            })
            .collect();
        let mut loss = 0.0;
        for (&i, lp) in group.iter().zip(&lp) {
            let l = train[i].label;
            loss -= fit.class_weight[l] as f64 * lp[l] / n.0 as f64;
        }
        for a in &lp[1..] {
            let d2: f64 = a.iter().zip(&lp[0]).map(|(x, y)| (x - y).powi(2)).sum();
            loss += lambda as f64 * d2 / n.1 as f64;
        }
        loss
    }

    /// Where one parameter lives.
    type Param = fn(&mut ReadoutFit) -> &mut f32;

    #[test]
    fn joint_gradients_with_the_consistency_term_match_finite_differences() {
        let mut rng = Rng::new(3);
        let (n_cls, c_in, members) = (3, 4, 2);
        let readouts: Vec<Readout> = (0..members)
            .map(|_| Readout {
                c_in,
                n_classes: n_cls,
                w: (0..c_in * n_cls).map(|_| rng.range(-0.3, 0.3)).collect(),
                bias: (0..n_cls).map(|_| rng.range(-0.1, 0.1)).collect(),
                beta: vec![0.01; n_cls],
            })
            .collect();
        // One clip alone and in two contexts: features [member][set][c_in + 1].
        let train: Vec<Sample> = (0..3)
            .map(|_| Sample {
                feats: (0..members)
                    .map(|_| {
                        let mut f: Vec<f32> = (0..c_in).map(|_| rng.range(0.0, 0.5)).collect();
                        f.push(1.0);
                        vec![f]
                    })
                    .collect(),
                label: 1,
            })
            .collect();
        let refs: Vec<&Readout> = readouts.iter().collect();
        let index = vec![vec![0; n_cls]; members];
        let mut fit = ReadoutFit::from_readouts(&refs, 4.0, &index, &[true; 3], &train, false);
        let group = [0, 1, 2];
        let n = (3, 2);
        let lambda = 0.7;
        let mut gw: Vec<Vec<f32>> = fit.w.iter().map(|w| vec![0.0; w.len()]).collect();
        let mut gb: Vec<Vec<f32>> = fit.b.iter().map(|b| vec![0.0; b.len()]).collect();
        fit.group_gradients(&train, &group, n, lambda, (&mut gw, &mut gb));
        // Central difference of the loss in one parameter, `at(fit)`.
        let numeric = |fit: &mut ReadoutFit, at: Param| {
            let eps = 1e-3f32;
            let x = *at(fit);
            *at(fit) = x + eps;
            let up = group_loss(fit, &train, &group, n, lambda);
            *at(fit) = x - eps;
            let down = group_loss(fit, &train, &group, n, lambda);
            *at(fit) = x;
            (up - down) / (2.0 * eps as f64)
        };
        let params: [(Param, f32, &str); 6] = [
            (|f| &mut f.w[0][0], gw[0][0], "w[0][0]"),
            (|f| &mut f.w[0][5], gw[0][5], "w[0][5]"),
            (|f| &mut f.w[1][11], gw[1][11], "w[1][11]"),
            (|f| &mut f.b[0][0], gb[0][0], "b[0][0]"),
            (|f| &mut f.b[1][1], gb[1][1], "b[1][1]"),
            (|f| &mut f.b[1][2], gb[1][2], "b[1][2]"),
        ];
        for (at, g, name) in params {
            let (num, g) = (numeric(&mut fit, at), g as f64);
            assert!(
                (num - g).abs() < 2e-3 + 0.02 * g.abs(),
                "{name}: {num} vs {g}"
            );
        }
    }
}
