//! etcflip-gen: builds a generation from a spec.
