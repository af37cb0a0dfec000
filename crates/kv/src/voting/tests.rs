//! Exact-effect tests of the voting client.
