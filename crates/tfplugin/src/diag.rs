//! Diagnostics (errors and warnings shown by Terraform) and attribute paths.

use std::fmt;

/// One step of an [`AttributePath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An object attribute or nested block by name.
    Attribute(String),
    /// A map element by key.
    Key(String),
    /// A list element by index.
    Index(i64),
}

/// Points Terraform at the part of the configuration a diagnostic is about.
///
/// `AttributePath::new("rules").index(0).attr("port")` is `rules[0].port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AttributePath(pub Vec<PathStep>);

impl AttributePath {
    /// A path starting at a top-level attribute.
    pub fn new(attribute: impl Into<String>) -> Self {
        AttributePath(vec![PathStep::Attribute(attribute.into())])
    }
    /// The empty path (the whole resource).
    pub fn root() -> Self {
        AttributePath(Vec::new())
    }
    /// Appends an attribute step.
    pub fn attr(mut self, name: impl Into<String>) -> Self {
        self.0.push(PathStep::Attribute(name.into()));
        self
    }
    /// Appends a map key step.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(PathStep::Key(key.into()));
        self
    }
    /// Appends a list index step.
    pub fn index(mut self, index: i64) -> Self {
        self.0.push(PathStep::Index(index));
        self
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                PathStep::Attribute(a) if i == 0 => write!(f, "{a}")?,
                PathStep::Attribute(a) => write!(f, ".{a}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Fails the operation.
    Error,
    /// Shown, but the operation goes on.
    Warning,
}

/// One message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// Longer explanation; may be empty.
    pub detail: String,
    /// The attribute it is about, if any.
    pub path: Option<AttributePath>,
}

impl Diagnostic {
    /// An error.
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }
    /// A warning.
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }
    /// Attaches an attribute path.
    pub fn at(mut self, path: AttributePath) -> Self {
        self.path = Some(path);
        self
    }
}

/// A list of diagnostics. It is also the error type of every provider method
/// (see [`crate::Result`]): any `std::error::Error` converts into a single
/// error diagnostic, so `?` works on client calls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }
    /// Adds an error.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Diagnostic::error(summary, detail));
    }
    /// Adds an error about one attribute.
    pub fn error_at(
        &mut self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Diagnostic::error(summary, detail).at(path));
    }
    /// Adds a warning.
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Diagnostic::warning(summary, detail));
    }
    /// Adds a warning about one attribute.
    pub fn warning_at(
        &mut self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Diagnostic::warning(summary, detail).at(path));
    }
    /// Adds one diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// Appends all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Iterates over the diagnostics.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
    /// `Err(self)` if there are errors, else `Ok(())`: ends a validation that
    /// collected several problems.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok(())
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl<E: std::error::Error> From<E> for Diagnostics {
    fn from(e: E) -> Self {
        // The error's own text is the summary; its source chain (client
        // errors often wrap the useful cause) is the detail.
        let mut causes = Vec::new();
        let mut src = e.source();
        while let Some(s) = src {
            causes.push(s.to_string());
            src = s.source();
        }
        Diagnostics(vec![Diagnostic::error(e.to_string(), causes.join(": "))])
    }
}

/// Turns any error into a diagnostic with a summary of your choosing:
/// `client.get(id).await.diag("Reading cluster")?` works for every error
/// type that implements `Display` (anyhow included).
pub trait ResultExt<T> {
    /// Maps the error to an error diagnostic: `summary`, detail = the error.
    fn diag(self, summary: &str) -> Result<T, Diagnostics>;
    /// Like [`ResultExt::diag`], pointing at an attribute.
    fn diag_at(self, path: AttributePath, summary: &str) -> Result<T, Diagnostics>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn diag(self, summary: &str) -> Result<T, Diagnostics> {
        // `{:#}` gives anyhow's "outer: inner" chain; plain errors ignore it.
        self.map_err(|e| Diagnostic::error(summary, format!("{e:#}")).into())
    }
    fn diag_at(self, path: AttributePath, summary: &str) -> Result<T, Diagnostics> {
        self.map_err(|e| Diagnostic::error(summary, format!("{e:#}")).at(path).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading cluster failed")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn std_errors_convert_with_their_cause_chain() {
        let d: Diagnostics = Outer(std::io::Error::other("connection refused")).into();
        assert_eq!(d.0[0].summary, "reading cluster failed");
        assert_eq!(d.0[0].detail, "connection refused");
        assert!(d.has_errors());
    }

    #[test]
    fn result_ext_sets_summary_and_path() {
        let r: Result<(), String> = Err("boom".into());
        let d = r
            .diag_at(AttributePath::new("labels").key("a"), "Bad label")
            .unwrap_err();
        assert_eq!(d.0[0].summary, "Bad label");
        assert_eq!(d.0[0].detail, "boom");
        assert_eq!(d.0[0].path.as_ref().unwrap().to_string(), "labels[\"a\"]");
    }

    #[test]
    fn path_display() {
        let p = AttributePath::new("rules").index(2).attr("port");
        assert_eq!(p.to_string(), "rules[2].port");
        assert!(Diagnostics::new().into_result().is_ok());
        let mut w = Diagnostics::new();
        w.warning("w", "");
        assert!(w.into_result().is_ok(), "warnings alone are not a failure");
    }
}
