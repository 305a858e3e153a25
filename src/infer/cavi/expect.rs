//! Expectations in a statement's frame: of an argument (a constant, a latent, a mixture
//! component, a gathered row, a linear predictor) and of the statement's value, plus the
//! small event-axis helpers the families share.
//!
//! What a latent's expectations are is its family's business ([`Ctx::latent_stat`] asks it,
//! and a linear predictor asks the block latent); this file only places them in the frame.
//! Never imports a family's file, `svi` or the posterior tools.

use super::{v, Ctx};
use crate::graph::MapFn;
use crate::infer::plan::{ArgForm, SitePlan, ValueForm};
use crate::interpret::{Layout, Value};

/// Which expectation of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stat {
    Mean,
    Second,
    Log,
    Log1m,
    /// E[1/x]
    Inverse,
}

/// A layout with its plates turned into leading value axes (the same data).
pub(super) fn unplated(lay: &Layout) -> Layout {
    let mut shape: Vec<usize> = lay.plates.iter().map(|p| p.1).collect();
    shape.extend(lay.shape.iter().copied());
    Layout {
        samples: lay.samples,
        plates: Vec::new(),
        shape,
    }
}

impl Ctx<'_> {
    /// A statistic of a known value (a constant or data).
    fn known_stat(&mut self, c: Value, stat: Stat) -> Value {
        match stat {
            Stat::Mean => c,
            Stat::Second => self.f(MapFn::Square, &c),
            Stat::Log => self.f(MapFn::Log, &c),
            Stat::Log1m => self.f(MapFn::Log1m, &c),
            Stat::Inverse => {
                let one = self.sc(1.0);
                self.div(&one, &c)
            }
        }
    }

    /// A statistic of one argument in a statement's frame. `stat` picks which expectation.
    pub(super) fn arg_stat(&mut self, form: &ArgForm, stat: Stat) -> Value {
        match form {
            ArgForm::Const(id) => {
                let c = self.constant(*id);
                self.known_stat(c, stat)
            }
            ArgForm::Latent(l) => self.latent_stat(*l, stat),
            ArgForm::Mix { latent, .. } => {
                // Components along the latent's first axis (or its plate); trailing axes stay
                // the member's.
                let st = self.latent_stat(*latent, stat);
                let whole = unplated(&st.lay);
                v(st.arr, whole)
            }
            ArgForm::Gather { latent, node } => {
                let s = self.latent_stat(*latent, stat);
                self.through(*node, *latent, s)
            }
            ArgForm::Linear { latent, covariates } => {
                let q = self.block(*latent);
                q.linear(self, *latent, *covariates, stat)
            }
        }
    }

    /// The statement's observed value (data) or the expectation of its latent value.
    pub(super) fn value_stat(&mut self, sp: &SitePlan, stat: Stat) -> Value {
        match &sp.value {
            ValueForm::Data(id) => {
                let x = self.constant(*id);
                self.known_stat(x, stat)
            }
            ValueForm::Latent(l) => self.latent_stat(*l, stat),
        }
    }

    /// A one-hot encoding of the statement's categorical value along `k` categories (data), or
    /// its responsibilities (a categorical latent).
    pub(super) fn value_one_hot(&mut self, sp: &SitePlan, k: usize) -> Value {
        match &sp.value {
            ValueForm::Data(id) => {
                let x = self.constant(*id);
                crate::dist::density::one_hot(&mut self.s, &x, k)
            }
            ValueForm::Latent(l) => self.latent_stat(*l, Stat::Mean),
        }
    }

    /// The rank of the statement's value per member.
    pub(super) fn value_rank(&self, sp: &SitePlan) -> usize {
        self.model.sites[sp.site].dist.value_shape().len()
    }

    /// E[τ] of a Normal statement: its precision, or 1/scale².
    pub(super) fn precision(&mut self, sp: &SitePlan) -> Value {
        use crate::dist::Parameterization;
        let pz = self.model.sites[sp.site].dist.pz;
        match pz {
            Parameterization::Precision => self.arg_stat(&sp.args[1], Stat::Mean),
            Parameterization::Variance => self.arg_stat(&sp.args[1], Stat::Inverse),
            _ => {
                let sd = self.arg_stat(&sp.args[1], Stat::Mean);
                let var = self.f(MapFn::Square, &sd);
                let one = self.sc(1.0);
                self.div(&one, &var)
            }
        }
    }

    /// E[(x − μ)²] for a Normal statement: E[x²] − 2 E[x] E[μ] + E[μ²].
    pub(super) fn expected_square_error(&mut self, sp: &SitePlan) -> Value {
        let ex = self.value_stat(sp, Stat::Mean);
        let ex2 = self.value_stat(sp, Stat::Second);
        let loc = sp.args[0].clone();
        let em = self.arg_stat(&loc, Stat::Mean);
        let em2 = self.arg_stat(&loc, Stat::Second);
        let cross = self.mul(&ex, &em);
        let cross = self.scale(&cross, 2.0);
        let r = self.sub(&ex2, &cross);
        self.add(&r, &em2)
    }

    /// Sum over the last axis, keeping it as length 1 (for broadcasting back).
    pub(super) fn sum_last(&mut self, a: &Value) -> Value {
        let n = a.lay.dims().len();
        let arr = self.s.sum_axes(&a.arr, n - 1, n);
        let mut lay = a.lay.clone();
        *lay.shape.last_mut().expect("an axis") = 1;
        v(arr.reshaped(&lay.dims()), lay)
    }

    /// Sum the last axis (an event axis), dropping it.
    pub(super) fn sum_event(&mut self, a: &Value) -> Value {
        let n = a.lay.dims().len();
        let arr = self.s.sum_axes(&a.arr, n - 1, n);
        let mut lay = a.lay.clone();
        lay.shape.pop();
        v(arr, lay)
    }

    /// ln B(a, b), elementwise.
    pub(super) fn log_beta(&mut self, a: &Value, b: &Value) -> Value {
        let ga = self.f(MapFn::LGamma, a);
        let gb = self.f(MapFn::LGamma, b);
        let ab = self.add(a, b);
        let gab = self.f(MapFn::LGamma, &ab);
        let r = self.add(&ga, &gb);
        self.sub(&r, &gab)
    }
}
