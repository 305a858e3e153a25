//! The trainer's state: everything a gradient fit carries from one step to the next, in one
//! struct that a checkpoint saves and a resumed fit restores whole.
//!
//! [`TrainerState::checkpoint`] and [`TrainerState::resume`] are the one save/load pair between
//! the state and the checkpoint file's layout (`checkpoint.rs`, a format older checkpoints must
//! keep reading). Both destructure the structs they read, so a field added to either side does
//! not compile until the pair says what becomes of it.
//!
//! Never imports the engine's forward pass, the fit loop, `report/` or the posterior tools.

use super::checkpoint::{Checkpoint, LoopState};
use super::engine::Shuffler;
use super::guide::Learnables;
use super::optim::Optimizer;
use crate::diag::{Diagnostic, Diagnostics};
use crate::infer::epoch::{Accumulator, EpochReport};
use crate::infer::StopRule;
use crate::store::NamedTensor;

/// Steps between back-off snapshots.
pub(super) const SNAPSHOT_EVERY: usize = 100;

/// What a gradient fit carries from one step to the next.
#[derive(Clone, Debug)]
pub(super) struct TrainerState {
    /// Steps done.
    pub(super) step: usize,
    /// The learnables' values (params unconstrained), in the engine's order: the truth while
    /// training, uploaded into the engine's tensors after every change.
    pub(super) params: Vec<Vec<f64>>,
    /// The tail average of the iterates (an exponential moving average).
    pub(super) average: Vec<Vec<f64>>,
    /// One optimiser per objective, with its moments and step count; its learning rate is the
    /// configured one halved once per back-off.
    pub(super) optimizers: Vec<Optimizer>,
    /// The minibatch orders and the random stream that reshuffles them.
    pub(super) shuffler: Shuffler,
    pub(super) stop: StopRule,
    /// The ELBO estimate of every step done.
    pub(super) trace: Vec<f64>,
    /// The epoch under way, and the epochs reported.
    pub(super) epoch_acc: Accumulator,
    pub(super) epochs: Vec<EpochReport>,
    /// Learning-rate halvings so far, and what caused them.
    pub(super) backoffs: usize,
    pub(super) backoff_notes: Vec<String>,
    /// Loop seconds of the runs before this one (a resumed fit's).
    pub(super) loop_s: f64,
    /// Points the stop rule's scores evaluated. Not saved: a resumed fit counts its own.
    pub(super) stop_evals: usize,
    /// The values before the last step: what a diverged fit keeps. Not saved: a resumed fit
    /// starts it from `params`.
    pub(super) last_good: Vec<Vec<f64>>,
    /// For back-off: the values at the last two multiples of [`SNAPSHOT_EVERY`] steps, older
    /// first (empty without back-off). Not saved: a resumed fit starts both at `params`.
    pub(super) snapshots: [Vec<Vec<f64>>; 2],
}

impl TrainerState {
    /// The state before the first step, from the initial values.
    pub(super) fn new(
        params: Vec<Vec<f64>>,
        optimizers: Vec<Optimizer>,
        shuffler: Shuffler,
        tol: f64,
        steps: usize,
        backoff: bool,
    ) -> TrainerState {
        let snapshots = if backoff {
            [params.clone(), params.clone()]
        } else {
            [Vec::new(), Vec::new()]
        };
        TrainerState {
            step: 0,
            average: params.clone(),
            last_good: params.clone(),
            params,
            optimizers,
            shuffler,
            stop: StopRule::new(tol),
            trace: Vec::with_capacity(steps),
            epoch_acc: Accumulator::default(),
            epochs: Vec::new(),
            backoffs: 0,
            backoff_notes: Vec::new(),
            loop_s: 0.0,
            stop_evals: 0,
            snapshots,
        }
    }

    /// The checkpoint of this state, its tensors named after `learn`'s entries; `loop_s` is
    /// the loop's seconds so far, this run's included.
    pub(super) fn checkpoint(&self, learn: &Learnables, record: String, loop_s: f64) -> Checkpoint {
        let TrainerState {
            step,
            params,
            average,
            optimizers,
            shuffler,
            stop,
            trace,
            epoch_acc,
            epochs,
            backoffs,
            backoff_notes,
            loop_s: _,
            stop_evals: _,
            last_good: _,
            snapshots: _,
        } = self;
        let saved: Vec<_> = optimizers.iter().map(Optimizer::save).collect();
        let tensor = |name: &str, shape: &[usize], values: &[f64]| NamedTensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            values: values.to_vec(),
        };
        Checkpoint {
            record,
            state: LoopState {
                step: *step,
                trace: trace.clone(),
                stop: stop.clone(),
                epoch_acc: epoch_acc.clone(),
                epochs: epochs.clone(),
                optimizer_steps: saved.iter().map(|o| o.t).collect(),
                orders: shuffler.orders.clone(),
                rng_word_pos: shuffler.rng.get_word_pos().to_string(),
                backoffs: *backoffs,
                backoff_notes: backoff_notes.clone(),
                loop_s,
                ended: None,
            },
            learn: learn
                .entries
                .iter()
                .zip(params)
                .map(|(e, v)| tensor(&e.name, &e.shape, v))
                .collect(),
            average: learn
                .entries
                .iter()
                .zip(average)
                .map(|(e, a)| tensor(&e.name, &e.shape, a))
                .collect(),
            moments: saved.into_iter().map(|o| o.moments).collect(),
        }
    }

    /// Continue from a checkpoint: this fresh state (for the same model, `learn` its engine's
    /// learnables) takes the checkpoint's, after checking that it fits. `backoff`: whether
    /// snapshots are kept.
    pub(super) fn resume(
        &mut self,
        ck: &Checkpoint,
        learn: &Learnables,
        backoff: bool,
    ) -> Result<(), Diagnostics> {
        let mismatch = |what: String| {
            Diagnostics::from(
                Diagnostic::new("vi::resume::mismatch", "the checkpoint does not fit this model").help(
                    format!("{what}; the model or its data changed since the checkpoint, so fit it afresh"),
                ),
            )
        };
        for ((e, v), avg) in learn.entries.iter().zip(&mut self.params).zip(&mut self.average) {
            let find = |list: &[NamedTensor]| list.iter().find(|t| t.name == e.name).cloned();
            let (Some(saved), Some(a)) = (find(&ck.learn), find(&ck.average)) else {
                return Err(mismatch(format!("it has no tensor `{}`", e.name)));
            };
            if saved.values.len() != v.len() || a.values.len() != v.len() {
                return Err(mismatch(format!("tensor `{}` has another size", e.name)));
            }
            *v = saved.values;
            *avg = a.values;
        }
        let saved = ck.optimizers();
        if saved.len() != self.optimizers.len() {
            return Err(mismatch("it has another number of objectives".into()));
        }
        for (o, st) in self.optimizers.iter_mut().zip(saved) {
            if !o.restore(st) {
                return Err(mismatch("its optimiser moments have other sizes".into()));
            }
        }
        let LoopState {
            step,
            trace,
            stop,
            epoch_acc,
            epochs,
            optimizer_steps: _,
            orders,
            rng_word_pos,
            loop_s,
            backoffs,
            backoff_notes,
            ended: _,
        } = ck.state.clone();
        let orders_fit = orders.len() == self.shuffler.orders.len()
            && orders
                .iter()
                .zip(&self.shuffler.orders)
                .all(|((order, at), (now, _))| {
                    order.len() == now.len() && *at <= order.len() && order.iter().all(|&i| i < now.len())
                });
        if !orders_fit {
            return Err(mismatch(
                "its minibatch orders do not fit this model's plates".into(),
            ));
        }
        self.shuffler.orders = orders;
        let pos: u128 = rng_word_pos
            .parse()
            .map_err(|_| mismatch("its random-stream position does not read".into()))?;
        self.shuffler.rng.set_word_pos(pos);
        self.step = step;
        // Into the buffer reserved for every step.
        self.trace.clear();
        self.trace.extend(trace);
        self.stop = stop;
        self.epoch_acc = epoch_acc;
        self.epochs = epochs;
        self.loop_s = loop_s;
        self.backoffs = backoffs;
        self.backoff_notes = backoff_notes;
        for o in &mut self.optimizers {
            o.config.lr *= 0.5f64.powi(backoffs as i32);
        }
        self.last_good.clone_from(&self.params);
        if backoff {
            self.snapshots = [self.last_good.clone(), self.last_good.clone()];
        }
        Ok(())
    }
}
