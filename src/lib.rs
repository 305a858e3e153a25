//! `vi`: a probabilistic programming language for variational inference.
//!
//! The pipeline, one module a phase: [`syntax`] (lex, parse) → [`check`] (names, types,
//! supports, shapes; elaborates into the [`graph`] IR) → inference engines → reports.
//! Every problem a user can cause is a [`diag::Diagnostic`] pointing at its source.

pub mod diag;
pub mod syntax;
pub mod data;
pub mod dist;
pub mod graph;
pub mod settings;
pub mod special;
