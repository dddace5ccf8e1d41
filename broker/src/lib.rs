//! Not built yet: this crate is delivered by issue 4 (see `docs/design.md`).
