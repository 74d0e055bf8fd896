//! The one place where client errors become Terraform diagnostics (STYLE.md: "Errors reach
//! Terraform through one helper").

use omni_client::Error;
use tfplugin::{AttributePath, Diagnostic, Diagnostics};

/// A diagnostic for a failed Omni call. `action` says what we were doing, e.g.
/// `"creating cluster \"lab\""`.
pub fn omni_error(action: &str, err: Error) -> Diagnostics {
    diagnostic(action, &err).into()
}

/// Like [`omni_error`], pointing at the attribute the failure is about (e.g. Omni rejected the
/// value of `talos_version`).
pub fn omni_error_at(action: &str, err: Error, path: AttributePath) -> Diagnostics {
    diagnostic(action, &err).at(path).into()
}

fn diagnostic(action: &str, err: &Error) -> Diagnostic {
    let (summary, hint) = match err {
        Error::Validation(_) => ("Omni rejected the configuration", ""),
        Error::Unauthenticated(_) => (
            "Omni refused the credentials",
            "\n\nCheck the service-account key (`service_account_key`, SIDERO_SERVICE_ACCOUNT_KEY \
             or OMNI_SERVICE_ACCOUNT_KEY): it may be unknown to this Omni, expired, or the \
             machine clock may be off by more than 5 minutes.",
        ),
        Error::PermissionDenied(_) => (
            "Omni denied the request",
            "\n\nThe service account's role is not enough for this change (writes need the \
             Operator role; some settings need Admin).",
        ),
        Error::Unavailable(_) | Error::DeadlineExceeded(_) => (
            "Omni is unreachable",
            "\n\nCheck `endpoint` (OMNI_ENDPOINT) and the network; reads were retried with backoff.",
        ),
        Error::Key(_) => (
            "Invalid service-account key",
            "\n\nThe key is the base64 string printed by `omnictl serviceaccount create`.",
        ),
        Error::AlreadyExists(_) => (
            "Already exists in Omni",
            "\n\nImport it with `terraform import` (or an `import` block) to manage it here.",
        ),
        _ => ("Omni request failed", ""),
    };
    Diagnostic::error(summary, format!("Error {action}: {err}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_keep_omnis_text_and_point_at_the_attribute() {
        let d = omni_error_at(
            "creating cluster \"a\"",
            Error::Validation("invalid talos version".into()),
            AttributePath::new("talos_version"),
        );
        assert_eq!(d.0[0].summary, "Omni rejected the configuration");
        assert!(
            d.0[0].detail.contains("invalid talos version"),
            "{}",
            d.0[0].detail
        );
        assert_eq!(d.0[0].path, Some(AttributePath::new("talos_version")));
    }

    #[test]
    fn auth_errors_say_what_to_check() {
        let d = omni_error(
            "reading cluster \"a\"",
            Error::Unauthenticated("invalid signature".into()),
        );
        assert!(d.0[0].detail.contains("OMNI_SERVICE_ACCOUNT_KEY"));
    }
}
