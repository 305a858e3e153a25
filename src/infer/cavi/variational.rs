//! What every variational family of CAVI implements ([`Variational`]) and what it starts from
//! ([`Start`]). A leaf of the engine: it imports no family and no dispatch, so each family's
//! file depends on this and nothing depends on a family but `family.rs`.

use rand_chacha::ChaCha8Rng;

use super::expect::Stat;
use super::summary::Sink;
use super::Ctx;
use crate::graph::LatentId;
use crate::infer::plan::SitePlan;
use crate::infer::LatentSummary;
use crate::interpret::{Layout, Value};

/// What a variational family knows: how it starts, how it updates from its neighbours, its
/// expectations, its entropy (its own ELBO term) and its summary.
pub(super) trait Variational: Sized {
    /// Start values for a restart.
    fn init(cx: &mut Ctx, at: &mut Start) -> Self;
    /// The closed-form update given every other latent's q.
    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self;
    /// E[stat(x)] elementwise, in the latent's layout.
    fn expect(&self, cx: &mut Ctx, l: LatentId, stat: Stat) -> Value;
    /// H[q], summed over the latent's elements.
    fn entropy(&self, cx: &mut Ctx, l: LatentId) -> f64;
    /// The latent's summary; its q's parameters go to `out`.
    fn summary(&self, cx: &mut Ctx, out: &mut Sink, rng: &mut ChaCha8Rng) -> LatentSummary;
}

/// What [`Variational::init`] is given.
pub(super) struct Start<'r> {
    pub l: LatentId,
    pub lay: Layout,
    pub prior: SitePlan,
    pub restart: usize,
    pub rng: &'r mut ChaCha8Rng,
}
