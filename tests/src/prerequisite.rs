//! What a test does when something it needs is missing (root for network namespaces, a Docker
//! engine, the test image, a Kafka client): outside CI it prints `SKIPPED` with the reason
//! and the fix, and returns; under `CI=true` it fails, naming what is missing. CI machines
//! have all of it (`scripts/setup.sh`, `scripts/test.sh`), so a skip there would only hide a
//! broken machine behind a green run.

/// Whether this run is CI's (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports that `test` cannot run because of `why`; `fix` says how to get what is missing.
/// Returns (so the caller can return) outside CI; panics under CI.
pub fn missing(test: &str, why: impl std::fmt::Display, fix: &str) {
    if in_ci() {
        panic!(
            "{test} cannot run: {why}. Under CI=true a missing prerequisite fails the test; {fix}"
        );
    }
    eprintln!("SKIPPED {test}: {why}. {fix}");
}
