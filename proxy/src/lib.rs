//! Not built yet: this crate is delivered by issue 5 (see `docs/design.md`).
