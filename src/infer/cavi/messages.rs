//! Messages: the accumulate-the-messages skeleton every conjugate update shares
//! ([`Ctx::accumulate`] over a family's [`Conjugate`] parts), the responsibilities that weight
//! a mixture statement's message, and how a message in a statement's frame is summed (or
//! scattered) down to a latent's layout.
//!
//! Knows no family by name. Never imports a family's file, `svi` or the posterior tools.

use super::{v, Ctx};
use crate::backend::Session;
use crate::graph::{LatentId, NodeId, Op};
use crate::infer::plan::{ArgForm, SitePlan};
use crate::interpret::{expand, joint_layout, Layout, Value};

use super::expect::{unplated, Stat};

/// A family whose update adds up messages: its natural parameters start at its prior's, and
/// every statement that uses the latent adds its own (expected sufficient statistics of the
/// latent's neighbours), in the same order.
pub(super) trait Conjugate {
    /// Axes of the message beyond the statement's value (a Dirichlet's categories).
    const EVENT_RANK: usize = 0;
    /// The prior's natural parameters, in the latent's layout `lay`.
    fn prior(cx: &mut Ctx, prior: &SitePlan, lay: &Layout) -> Vec<Value>;
    /// The message of plan statement `k` when a fused mixture has it ready, in `lay`.
    fn fused(_cx: &mut Ctx, _k: usize, _lay: &Layout) -> Option<Vec<Value>> {
        None
    }
    /// The message statement `sp` sends through argument `slot`, in the statement's frame
    /// and before its responsibilities weight it.
    fn message(cx: &mut Ctx, sp: &SitePlan, slot: usize, lay: &Layout) -> Vec<Value>;
    /// The same message already weighted and summed into `lay`, where the family has a
    /// cheaper way there than through the statement's frame (which can be far larger than
    /// either end); None to take the general way.
    fn direct(_cx: &mut Ctx, _sp: &SitePlan, _slot: usize, _lay: &Layout) -> Option<Vec<Value>> {
        None
    }
}

impl Ctx<'_> {
    /// Statements that use latent `l` as an argument, with the slot.
    pub(super) fn uses(&self, l: LatentId) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (k, sp) in self.plan.sites.iter().enumerate() {
            for (slot, a) in sp.args.iter().enumerate() {
                if a.latent() == Some(l) {
                    out.push((k, slot));
                }
            }
        }
        out
    }

    /// [`Ctx::accumulate`] for a family of two parameters, each brought to the latent's layout.
    pub(super) fn accumulate_pair<F: Conjugate>(
        &mut self,
        l: LatentId,
        prior: &SitePlan,
        lay: &Layout,
    ) -> (Value, Value) {
        let acc = self.accumulate::<F>(l, prior, lay);
        let [a, b] = &acc[..] else {
            unreachable!("two natural parameters")
        };
        (expand(&mut self.s, a, lay), expand(&mut self.s, b, lay))
    }

    /// Latent `l`'s natural parameters: its prior's plus every message sent to it. Each
    /// message is weighted by its statement's responsibilities, its parts brought to one
    /// frame, and summed down to the latent's layout.
    pub(super) fn accumulate<F: Conjugate>(
        &mut self,
        l: LatentId,
        prior: &SitePlan,
        lay: &Layout,
    ) -> Vec<Value> {
        let mut acc = F::prior(self, prior, lay);
        for (k, slot) in self.uses(l) {
            if let Some(parts) = F::fused(self, k, lay) {
                for (a, m) in acc.iter_mut().zip(&parts) {
                    *a = self.add(a, m);
                }
                continue;
            }
            let sp = self.plan.sites[k].clone();
            if let Some(parts) = F::direct(self, &sp, slot, lay) {
                for (a, m) in acc.iter_mut().zip(&parts) {
                    *a = self.add(a, m);
                }
                continue;
            }
            let rank = self.value_rank(&sp) + F::EVENT_RANK;
            let parts = F::message(self, &sp, slot, lay);
            let parts: Vec<Value> = parts.iter().map(|p| self.weighted(&sp, p, rank)).collect();
            let frame = parts
                .iter()
                .map(|p| p.lay.clone())
                .reduce(|a, b| joint_layout(&a, &b))
                .expect("a message has parts");
            let form = sp.args[slot].clone();
            for (a, p) in acc.iter_mut().zip(&parts) {
                let p = expand(&mut self.s, p, &frame);
                let m = self.message_to(&p, &form, l);
                *a = self.add(a, &m);
            }
        }
        acc
    }

    /// The responsibilities of a statement's mixture index, shaped to broadcast against arrays
    /// with `rank` axes after the component axis.
    fn weights(&mut self, sp: &SitePlan, rank: usize) -> Option<Value> {
        let c = sp.index?;
        let probs = self.latent_stat(c, Stat::Mean);
        let mut lay = probs.lay.clone();
        lay.shape.extend(std::iter::repeat_n(1, rank));
        Some(v(probs.arr.reshaped(&lay.dims()), lay))
    }

    /// Weight a per-member (and per-component) array by the statement's responsibilities.
    pub(super) fn weighted(&mut self, sp: &SitePlan, a: &Value, rank: usize) -> Value {
        match self.weights(sp, rank) {
            Some(w) => self.mul(&w, a),
            None => a.clone(),
        }
    }

    /// Sum a message in a statement's frame down to a latent's layout, following the form in
    /// which the latent appears.
    fn message_to(&mut self, msg: &Value, form: &ArgForm, l: LatentId) -> Value {
        let target = self.latent_layout(l);
        match form {
            ArgForm::Gather { node, .. } => {
                // Rows were chosen by data: add them back into the rows they came from.
                let (rows, index) = self.gather_index(*node);
                let lat = self.model.latent(l);
                let row_shape = if lat.plates.is_empty() {
                    target.shape[1..].to_vec()
                } else {
                    target.shape.clone()
                };
                let row_target = Layout {
                    samples: None,
                    plates: msg.lay.plates.clone(),
                    shape: row_shape,
                };
                let m = reduce_to(&mut self.s, msg, &row_target, true);
                let out = self.s.scatter_add_rows(&m.arr, &index, rows);
                // The latent's first axis (or its plate) is the gathered one.
                v(out.reshaped(&target.dims()), target)
            }
            ArgForm::Mix { .. } if !self.model.latent(l).plates.is_empty() => {
                // Components drawn in a plate: the plate is the component axis.
                let whole = unplated(&target);
                let m = reduce_to(&mut self.s, msg, &whole, false);
                v(m.arr.reshaped(&target.dims()), target)
            }
            _ => reduce_to(&mut self.s, msg, &target, false),
        }
    }

    /// For a `latent[data]` node: the latent's first-axis length and the data indices (one per
    /// plate member of the statement).
    fn gather_index(&mut self, node: NodeId) -> (usize, Vec<usize>) {
        let Op::Select { src, index, .. } = &self.model.node(node).op else {
            unreachable!("a gather is a select")
        };
        let idx = self.constant(*index);
        let rows = match &self.model.node(*src).op {
            Op::Unplate { src } => {
                let Op::Latent(l) = self.model.node(*src).op else {
                    unreachable!()
                };
                self.latent_layout(l).plates.first().map_or(1, |p| p.1)
            }
            Op::Latent(l) => self.latent_layout(*l).shape[0],
            _ => unreachable!("gathers read a latent"),
        };
        let vals = self.s.values(&idx.arr);
        (rows, vals.iter().map(|x| x.round().max(0.0) as usize).collect())
    }
}

/// Sum `v` down to `target`: plates the target lacks, and leading value axes it lacks. With
/// `keep_plates`, the value's plates are kept (for scattering).
pub(super) fn reduce_to(s: &mut Session, val: &Value, target: &Layout, keep_plates: bool) -> Value {
    let mut cur = val.clone();
    // Plates not in the target, from the innermost.
    let drop: Vec<usize> = cur
        .lay
        .plates
        .iter()
        .enumerate()
        .filter(|(_, p)| !keep_plates && !target.plates.iter().any(|q| q.0 == p.0))
        .map(|(i, _)| i)
        .collect();
    for &i in drop.iter().rev() {
        let ax = usize::from(cur.lay.samples.is_some()) + i;
        let arr = s.sum_axes(&cur.arr, ax, ax + 1);
        let mut lay = cur.lay.clone();
        lay.plates.remove(i);
        cur = Value::new(arr, lay);
    }
    // Leading value axes beyond the target's rank.
    let extra = cur.lay.shape.len().saturating_sub(target.shape.len());
    if extra > 0 {
        let lead = cur.lay.lead();
        let arr = s.sum_axes(&cur.arr, lead, lead + extra);
        let mut lay = cur.lay.clone();
        lay.shape.drain(..extra);
        cur = Value::new(arr, lay);
    }
    // Axes where the target is 1 but the value is longer (broadcast in the forward direction).
    for k in 0..cur.lay.shape.len() {
        if target.shape.get(k) == Some(&1) && cur.lay.shape[k] != 1 {
            let ax = cur.lay.lead() + k;
            let arr = s.sum_axes(&cur.arr, ax, ax + 1);
            let mut lay = cur.lay.clone();
            lay.shape[k] = 1;
            cur = Value::new(arr.reshaped(&lay.dims()), lay);
        }
    }
    let want = if keep_plates {
        Layout {
            plates: cur.lay.plates.clone(),
            ..target.clone()
        }
    } else {
        target.clone()
    };
    expand(s, &cur, &want)
}
