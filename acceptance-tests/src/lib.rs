//! Acceptance test harness
