//! Talos config patch checks as Omni applies them (image-factory-and-talos.md §6.2–§6.3,
//! omni-api.md §4 ConfigPatch).

use std::fmt;

/// One problem found in a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchProblem {
    /// YAML path of the offending field when known (e.g. `machine.token`).
    pub path: Option<String>,
    /// Omni's message for this problem.
    pub message: String,
}

/// A rejected patch. `Display` follows Omni: a loader error is printed as is; rule violations
/// are printed in hashicorp go-multierror style (`N errors occurred:\n\t* ...\n\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// True when the Talos config loader refused the text (printed without multierror framing).
    pub load_error: bool,
    /// The problems, in Omni's order.
    pub problems: Vec<PatchProblem>,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.load_error {
            if let Some(p) = self.problems.first() {
                return f.write_str(&p.message);
            }
        }
        let n = self.problems.len();
        if n == 1 {
            writeln!(f, "1 error occurred:")?;
        } else {
            writeln!(f, "{n} errors occurred:")?;
        }
        for p in &self.problems {
            writeln!(f, "\t* {}", p.message)?;
        }
        writeln!(f)
    }
}

impl std::error::Error for PatchError {}

/// Validates a config patch the way Omni does before storing it.
pub fn validate_config_patch(yaml: &str) -> Result<(), PatchError> {
    let _ = yaml;
    Err(PatchError {
        load_error: true,
        problems: vec![PatchProblem {
            path: None,
            message: "not implemented yet".into(),
        }],
    })
}

/// True when both multi-document YAML texts mean the same (key order, comments, styles ignored).
pub fn semantically_equal(a: &str, b: &str) -> bool {
    match (normalize(a), normalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Canonical text of a multi-document YAML (for diff suppression).
pub fn normalize(yaml: &str) -> Result<String, PatchError> {
    let _ = yaml;
    Err(PatchError {
        load_error: true,
        problems: vec![PatchProblem {
            path: None,
            message: "not implemented yet".into(),
        }],
    })
}
