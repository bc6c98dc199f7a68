//! Browser tests of the portal live in `tests/`; this crate has no code of its own.
