//! What runs after a fit, on its saved state: how far to trust it (PSIS k̂, the
//! importance-weighted bound), posterior and predictive draws, held-out log p(x), pictures.
//!
//! These use the engines' forward passes and draws, never their training loops: nothing here
//! imports `svi`'s trainer, `cavi`'s sweeps, or the command line.

pub mod arviz;
pub mod classify;
pub mod eval;
pub mod loo;
pub mod pictures;
pub mod sample;
pub mod trust;
