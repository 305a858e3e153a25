//! The one place a latent's variational family is chosen. [`Q`] holds a latent's q as one of
//! the families' own types; the plan's [`QFamily`] picks which family's code starts and
//! updates a latent (`by_family!`) and `Q`'s variant picks whose expectations, entropy and
//! summary answer (`each!`). Each family's file implements [`Variational`] and knows nothing
//! of the others; nothing outside this file matches on a latent's family to dispatch.
//!
//! Never imports `svi`, the posterior tools or the loop (`sweeps.rs`).

use rand_chacha::ChaCha8Rng;

use super::beta::Beta;
use super::block::Block;
use super::categorical::Categorical;
use super::dirichlet::Dirichlet;
use super::expect::Stat;
use super::gamma::Gamma;
use super::inverse_gamma::InverseGamma;
use super::mixture::Responsibilities;
use super::normal::Normal;
use super::summary::Sink;
use super::variational::{Start, Variational};
use super::Ctx;
use crate::graph::LatentId;
use crate::infer::plan::QFamily;
use crate::infer::LatentSummary;
use crate::interpret::Value;

/// One latent's variational distribution.
#[derive(Clone, Debug)]
pub(super) enum Q {
    Normal(Normal),
    /// A multivariate Normal over the latent's vector.
    Block(Block),
    Gamma(Gamma),
    /// On a Normal variance.
    InverseGamma(InverseGamma),
    Beta(Beta),
    Dirichlet(Dirichlet),
    Categorical(Categorical),
    /// Responsibilities kept on the host by a fused mixture update.
    Responsibilities(Responsibilities),
}

/// Run `$e` with `$q` bound to whichever family's q `$x` holds.
macro_rules! each {
    ($x:expr, $q:ident => $e:expr) => {
        match $x {
            Q::Normal($q) => $e,
            Q::Block($q) => $e,
            Q::Gamma($q) => $e,
            Q::InverseGamma($q) => $e,
            Q::Beta($q) => $e,
            Q::Dirichlet($q) => $e,
            Q::Categorical($q) => $e,
            Q::Responsibilities($q) => $e,
        }
    };
}

/// Which family's code runs a latent planned as `family` (a categorical whose mixture is fused
/// keeps its responsibilities on the host).
macro_rules! by_family {
    ($cx:expr, $l:expr, $F:ident => $e:expr) => {
        match $cx.plan.q($l) {
            QFamily::Normal => Q::Normal({
                type $F = Normal;
                $e
            }),
            QFamily::NormalBlock => Q::Block({
                type $F = Block;
                $e
            }),
            QFamily::Gamma => Q::Gamma({
                type $F = Gamma;
                $e
            }),
            QFamily::InverseGamma => Q::InverseGamma({
                type $F = InverseGamma;
                $e
            }),
            QFamily::Beta => Q::Beta({
                type $F = Beta;
                $e
            }),
            QFamily::Dirichlet => Q::Dirichlet({
                type $F = Dirichlet;
                $e
            }),
            QFamily::Categorical if $cx.fast[$l.index()].is_some() => Q::Responsibilities({
                type $F = Responsibilities;
                $e
            }),
            QFamily::Categorical => Q::Categorical({
                type $F = Categorical;
                $e
            }),
        }
    };
}

impl Ctx<'_> {
    /// Start every latent's q afresh for restart `restart`.
    pub(super) fn init(&mut self, restart: usize, rng: &mut ChaCha8Rng) {
        for k in 0..self.model.latents.len() {
            let l = LatentId(k as u32);
            let mut at = Start {
                l,
                lay: self.latent_layout(l),
                prior: self.prior_plan(l),
                restart,
                rng: &mut *rng,
            };
            let q = by_family!(self, l, F => F::init(self, &mut at));
            self.q[k] = Some(q);
        }
    }

    /// Update latent `l`'s q in closed form.
    pub(super) fn update(&mut self, l: LatentId) {
        let prior = self.prior_plan(l);
        let lay = self.latent_layout(l);
        let q = by_family!(self, l, F => F::update(self, l, &prior, &lay));
        self.q[l.index()] = Some(q);
    }

    /// E[stat(x)] of latent `l` under its q.
    pub(super) fn latent_stat(&mut self, l: LatentId, stat: Stat) -> Value {
        // Lent out and put back rather than cloned: a fused mixture's q is its n × k
        // responsibilities. No family reads its own q while answering.
        let q = self.q[l.index()].take().expect("initialised");
        let r = each!(&q, q => q.expect(self, l, stat));
        self.q[l.index()] = Some(q);
        r
    }

    /// H[q] of latent `l`.
    pub(super) fn entropy(&mut self, l: LatentId) -> f64 {
        // Lent out and put back rather than cloned: a fused mixture's q is its n × k
        // responsibilities. No family reads its own q while answering.
        let q = self.q[l.index()].take().expect("initialised");
        let r = each!(&q, q => q.entropy(self, l));
        self.q[l.index()] = Some(q);
        r
    }

    /// Latent `l`'s summary, its q's parameters put to `out`.
    pub(super) fn summary_of(&mut self, l: LatentId, out: &mut Sink, rng: &mut ChaCha8Rng) -> LatentSummary {
        // Lent out and put back rather than cloned: a fused mixture's q is its n × k
        // responsibilities. No family reads its own q while answering.
        let q = self.q[l.index()].take().expect("initialised");
        let r = each!(&q, q => q.summary(self, out, rng));
        self.q[l.index()] = Some(q);
        r
    }

    /// The mean and covariance of a block latent (it is the only family a linear predictor
    /// reads whole).
    pub(super) fn block(&self, l: LatentId) -> Block {
        match self.q(l) {
            Q::Block(b) => b.clone(),
            _ => unreachable!("linear forms have block q"),
        }
    }
}

impl Ctx<'_> {
    /// The fused responsibilities a latent holds, taken out to be rewritten in place.
    pub(super) fn take_responsibilities(&mut self, c: LatentId) -> Option<Responsibilities> {
        match self.q[c.index()].take() {
            Some(Q::Responsibilities(r)) => Some(r),
            other => {
                self.q[c.index()] = other;
                None
            }
        }
    }
}
