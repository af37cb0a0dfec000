//! `stockade groups`: LA-groups (paper 000) as an operator sees them: a live group's view and its
//! attestation graph, printed and drawn ([`render`]: Graphviz DOT and a self-contained SVG).
//!
//! `groups demo` runs a live group in the deterministic simulator ([`demo`]); `groups member`
//! runs one real member over the runtime's links ([`member`]); `groups view` asks a running member
//! for its view and draws it ([`view`]).

pub mod demo;
pub mod member;
pub mod render;
pub mod view;
