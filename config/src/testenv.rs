//! The variables that point tests at real servers (`PM_TEST_DATABASE_URL`,
//! `PM_TEST_REDIS_URL`, `PM_TEST_S3_ENDPOINT`), read the same way by every crate's tests.

/// The value of `name`. Unset: `None` (the test runs without that server and says so) on a
/// developer's machine, but a panic under `CI=true`, where a missing server must fail the run
/// instead of passing silently.
pub fn test_server(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{name} is unset under CI=true: .ci/run must start that server and set it"
            );
            eprintln!("{name} unset: the tests that need it run without it");
            None
        }
    }
}
