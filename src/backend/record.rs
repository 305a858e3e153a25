//! Recording a pass: the ops a [`Session`] runs, captured as a list that [`super::plan`] turns
//! into a compiled plan.
//!
//! While a session records, every op it runs eagerly (through dfdx, as always) is also appended
//! to a [`Recording`], and every operand the recording has not seen is classified as a leaf:
//! a param (by its [`Param`] identity, seen through [`Session::leaf`]), noise (made by
//! [`Session::noise`]: it changes every step, in the order the pass draws it), or a constant
//! (data and anything else made from host values: fixed for the fit, captured as it is).
//! What a recording cannot replay makes it fail with a reason: an op the plan does not cover
//! yet, or a value computed from params or noise read back to the host mid-pass (the pass
//! would then branch on it).

use std::collections::HashMap;

use super::{Array, Param, Session};
use crate::graph::{MapFn, ZipFn};

/// One recorded op on flat row-major buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    Map(MapFn),
    /// Add, Sub, Mul, Div or Max (the others are composed of these by the session).
    Zip(ZipFn),
    Scale(f64),
    Shift(f64),
    Clamp(f64, f64),
    /// `[before, after]` repeated `n` times along a new middle axis.
    InsertAxis {
        before: usize,
        n: usize,
        after: usize,
    },
    /// `[before, mid, after]` summed over `mid`.
    SumAxes {
        before: usize,
        mid: usize,
        after: usize,
    },
    /// Along the last axis of `[rows, k]`.
    Softmax {
        rows: usize,
        k: usize,
        log: bool,
    },
    LogSumExp {
        rows: usize,
        k: usize,
    },
}

/// Where a leaf's values come from.
#[derive(Clone, Debug)]
pub(crate) enum Leaf {
    /// A param, by its identity ([`Param::id`]).
    Param(u64),
    /// The `k`-th noise array of the pass.
    Noise(usize),
    /// Values fixed for the fit.
    Const(Vec<f64>),
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Leaf(Leaf),
    Op(Op, Vec<usize>),
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) len: usize,
    /// Whether its values change between steps (it depends on a param or on noise).
    pub(crate) varying: bool,
}

/// The ops of one pass, in the order they ran.
#[derive(Default, Debug)]
pub struct Recording {
    pub(crate) nodes: Vec<Node>,
    ids: HashMap<u64, usize>,
    params: HashMap<u64, ()>,
    /// The noise arrays' values as the pass drew them.
    pub(crate) noise: Vec<Vec<f64>>,
    /// Why the pass cannot be replayed (the first reason met).
    failed: Option<String>,
}

impl Recording {
    fn fail(&mut self, why: String) {
        if self.failed.is_none() {
            self.failed = Some(why);
        }
    }

    fn push(&mut self, kind: Kind, len: usize, varying: bool, key: u64) -> usize {
        self.nodes.push(Node { kind, len, varying });
        let id = self.nodes.len() - 1;
        self.ids.insert(key, id);
        id
    }

    /// The node of an operand, classifying it as a leaf when first seen.
    /// `values` are the operand's, where [`Recording::is_new_constant`] says it needs them.
    fn node_of(&mut self, a: &Array, values: Option<Vec<f64>>) -> usize {
        if let Some(&id) = self.ids.get(&a.key) {
            return id;
        }
        if self.params.contains_key(&a.key) {
            return self.push(Kind::Leaf(Leaf::Param(a.key)), a.len(), true, a.key);
        }
        let values = values.unwrap_or_else(|| {
            self.fail("a value computed before the recording began".to_string());
            vec![0.0; a.len()]
        });
        self.push(Kind::Leaf(Leaf::Const(values)), a.len(), false, a.key)
    }

    /// Whether `a` is first seen here as a constant (its values are then needed).
    fn is_new_constant(&self, a: &Array) -> bool {
        !self.ids.contains_key(&a.key) && !self.params.contains_key(&a.key) && !a.traced
    }

    /// How many noise arrays the pass drew, and their lengths.
    pub fn noise_lens(&self) -> Vec<usize> {
        self.noise.iter().map(Vec::len).collect()
    }

    /// The recorded noise arrays, in the order the pass drew them.
    pub fn noise_values(&self) -> &[Vec<f64>] {
        &self.noise
    }

    /// Why the pass cannot be replayed, if it cannot.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }
}

impl Param {
    /// The param's identity: the same across steps and value updates.
    pub fn id(&self) -> u64 {
        self.array.key
    }
}

impl Session {
    /// Record the ops that follow (while still computing them eagerly), until
    /// [`Session::finish_recording`].
    pub fn start_recording(&mut self) {
        *self.rec.borrow_mut() = Some(Recording::default());
    }

    /// Whether a recording is under way.
    pub fn recording(&self) -> bool {
        self.rec.borrow().is_some()
    }

    /// Stop recording; the ops recorded and the nodes of `outputs`, or why the pass cannot be
    /// replayed.
    pub fn finish_recording(&mut self, outputs: &[&Array]) -> Result<(Recording, Vec<usize>), String> {
        let Some(mut rec) = self.rec.borrow_mut().take() else {
            return Err("nothing was recorded".to_string());
        };
        let outs: Vec<usize> = outputs
            .iter()
            .map(|a| {
                let values = rec.is_new_constant(a).then(|| self.host_values(a));
                rec.node_of(a, values)
            })
            .collect();
        match rec.failed.take() {
            Some(why) => Err(why),
            None => Ok((rec, outs)),
        }
    }

    /// Standard-normal noise for this pass (untraced, like [`Session::array`]); a recording
    /// knows that it is drawn afresh every step.
    pub fn noise(&self, values: &[f64], shape: &[usize]) -> Array {
        let a = self.array(values, shape);
        if let Some(rec) = self.rec.borrow_mut().as_mut() {
            let k = rec.noise.len();
            rec.noise.push(values.to_vec());
            rec.push(Kind::Leaf(Leaf::Noise(k)), a.len(), true, a.key);
        }
        a
    }

    /// A recording learns a param's identity where the pass reads it.
    pub(super) fn note_param(&self, p: &Param) {
        if let Some(rec) = self.rec.borrow_mut().as_mut() {
            rec.params.insert(p.array.key, ());
        }
    }

    /// A host read of `a`: fine for constants, fatal to a recording for varying values.
    pub(super) fn note_read(&self, a: &Array) {
        if let Some(rec) = self.rec.borrow_mut().as_mut() {
            let varying = rec.ids.get(&a.key).is_some_and(|&id| rec.nodes[id].varying)
                || rec.params.contains_key(&a.key);
            if varying {
                rec.fail("the pass reads a value computed from params or noise back to the host".to_string());
            }
        }
    }

    /// An op the plan does not cover yet.
    pub(super) fn note_unsupported(&self, what: &str) {
        if let Some(rec) = self.rec.borrow_mut().as_mut() {
            rec.fail(format!(
                "the pass uses {what}, which the compiled plan does not cover yet"
            ));
        }
    }

    /// Append `op` on `ins` giving `out`.
    pub(super) fn note_op(&self, op: Op, ins: &[&Array], out: &Array) {
        if self.rec.borrow().is_none() {
            return;
        }
        // Constants' values are read before the recording is borrowed.
        let consts: Vec<Option<Vec<f64>>> = {
            let rec = self.rec.borrow();
            let rec = rec.as_ref().expect("checked above");
            ins.iter()
                .map(|a| rec.is_new_constant(a).then(|| self.host_values(a)))
                .collect()
        };
        let mut guard = self.rec.borrow_mut();
        let rec = guard.as_mut().expect("checked above");
        let ids: Vec<usize> = ins.iter().zip(consts).map(|(a, c)| rec.node_of(a, c)).collect();
        let varying = ids.iter().any(|&i| rec.nodes[i].varying);
        rec.push(Kind::Op(op, ids), out.len(), varying, out.key);
    }
}
