//! The one error type of this crate.
//!
//! gRPC failures keep their status code and are sorted into the kinds a caller acts on
//! (omni-api.md §1.7): NotFound for reads, Conflict for version races, Validation for Omni's
//! `failed to validate: ` errors, and so on.

use std::time::SystemTime;

use tonic::Code;

/// Prefix Omni puts on every validation failure (omni-api.md §1.7, `validated.IsValidationError`).
pub const VALIDATION_PREFIX: &str = "failed to validate: ";

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to Omni.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist (gRPC NotFound).
    #[error("not found: {0}")]
    NotFound(String),
    /// A resource with this ID already exists (gRPC AlreadyExists on Create).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// Version mismatch on Update, or pending finalizers on Destroy (gRPC FailedPrecondition).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Omni rejected the resource: gRPC InvalidArgument with the `failed to validate: ` prefix.
    /// The text is the server's message without that prefix.
    #[error("validation failed: {0}")]
    Validation(String),
    /// Any other InvalidArgument, e.g. a phase conflict on Update (`expected_phase`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The caller's role is not enough (gRPC PermissionDenied), or an owner mismatch.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The signature was rejected (gRPC Unauthenticated, usually `invalid signature`).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The server does not implement the call (gRPC Unimplemented).
    #[error("unimplemented: {0}")]
    Unimplemented(String),
    /// The server could not be reached or dropped the call (gRPC Unavailable).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The call ran out of time (gRPC DeadlineExceeded).
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// Any other gRPC status.
    #[error("gRPC error {code:?}: {message}")]
    Grpc {
        /// The gRPC status code.
        code: Code,
        /// The status message.
        message: String,
    },
    /// A watch reported an ERRORED event (e.g. `buffer overrun`); the watch is over.
    #[error("watch failed: {0}")]
    WatchErrored(String),
    /// The endpoint string could not be used.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was rejected.
        reason: String,
    },
    /// TLS settings (CA bundle, roots) could not be loaded.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The service-account key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The server sent something this client cannot decode.
    #[error("cannot decode server response: {0}")]
    Decode(String),
    /// A request could not be built from the caller's input.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl Error {
    /// The gRPC status code this error carries, if it came from a gRPC status.
    pub fn code(&self) -> Option<Code> {
        Some(match self {
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::Conflict(_) => Code::FailedPrecondition,
            Error::Validation(_) | Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Unavailable(_) => Code::Unavailable,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Grpc { code, .. } => *code,
            _ => return None,
        })
    }

    /// True for NotFound.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// True for the transient failures that are retried (UNAVAILABLE, DEADLINE_EXCEEDED).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::DeadlineExceeded(_))
    }
}

/// The message tonic gives a call whose HTTP/2 connection failed underneath it.
const TONIC_TRANSPORT_ERROR: &str = "transport error";

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::FailedPrecondition => Error::Conflict(message),
            Code::InvalidArgument => match message.strip_prefix(VALIDATION_PREFIX) {
                Some(rest) => Error::Validation(rest.to_string()),
                None => Error::InvalidArgument(message),
            },
            Code::PermissionDenied => Error::PermissionDenied(message),
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::Unimplemented => Error::Unimplemented(message),
            Code::Unavailable => Error::Unavailable(message),
            Code::DeadlineExceeded => Error::DeadlineExceeded(message),
            // tonic reports a connection that broke under an in-flight call (the server
            // crashed or restarted) as UNKNOWN "transport error". Like UNAVAILABLE, the call may
            // or may not have landed, so it is retried the same way (create checks with a Get
            // first); otherwise one server restart fails every call that was in flight.
            Code::Unknown if message == TONIC_TRANSPORT_ERROR => Error::Unavailable(message),
            code => Error::Grpc { code, message },
        }
    }
}

/// Why a service-account key (omni-api.md §2.1) could not be loaded. Messages never contain key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither `SIDERO_SERVICE_ACCOUNT_KEY` nor `OMNI_SERVICE_ACCOUNT_KEY` is set.
    #[error("no service account key: set SIDERO_SERVICE_ACCOUNT_KEY or OMNI_SERVICE_ACCOUNT_KEY")]
    Missing,
    /// The value is not standard base64.
    #[error("service account key is not valid base64: {0}")]
    NotBase64(String),
    /// The decoded value is not the `{name, pgp_key}` JSON object.
    #[error("service account key is not the expected JSON object {{\"name\", \"pgp_key\"}}: {0}")]
    NotJson(String),
    /// The name is empty or contains whitespace (it travels space-separated in a header).
    #[error("service account name {0:?} is empty or contains whitespace")]
    InvalidName(String),
    /// `pgp_key` is not an armored OpenPGP secret key.
    #[error("service account pgp_key is not an armored OpenPGP private key: {0}")]
    NoSecretKey(String),
    /// The secret key is protected by a passphrase.
    #[error("service account key {fingerprint} is encrypted with a passphrase; Omni keys must be unencrypted")]
    Encrypted {
        /// Lowercase hex fingerprint of the primary key.
        fingerprint: String,
    },
    /// The primary key cannot make signatures.
    #[error("service account key {fingerprint} has no signing capability")]
    NoSigningCapability {
        /// Lowercase hex fingerprint of the primary key.
        fingerprint: String,
    },
    /// The key's self-signature says it has expired.
    #[error("service account key {fingerprint} expired at {expired_at:?}; create or renew the service account")]
    Expired {
        /// Lowercase hex fingerprint of the primary key.
        fingerprint: String,
        /// When it expired.
        expired_at: SystemTime,
    },
    /// Producing a signature failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_is_transient_but_other_unknown_errors_are_not() {
        let broken: Error = tonic::Status::unknown("transport error").into();
        assert!(broken.is_transient(), "{broken:?}");
        let other: Error = tonic::Status::unknown("panic in handler").into();
        assert!(!other.is_transient(), "{other:?}");
    }

    #[test]
    fn validation_prefix_is_recognised_only_on_invalid_argument() {
        let e: Error = tonic::Status::invalid_argument(
            "failed to validate: 1 error occurred:\n\t* name is required\n\n",
        )
        .into();
        match &e {
            Error::Validation(m) => assert!(m.starts_with("1 error occurred")),
            other => panic!("{other:?}"),
        }
        assert_eq!(e.code(), Some(Code::InvalidArgument));

        let phase: Error =
            tonic::Status::invalid_argument("resource is not in phase running").into();
        assert!(matches!(phase, Error::InvalidArgument(_)));

        // A PermissionDenied carrying the prefix keeps its own code (omni-api.md §1.7).
        let denied: Error =
            tonic::Status::permission_denied("failed to validate: insufficient role").into();
        assert!(matches!(denied, Error::PermissionDenied(_)));
    }

    #[test]
    fn codes_map_to_kinds() {
        assert!(Error::from(tonic::Status::not_found("x")).is_not_found());
        assert!(matches!(
            Error::from(tonic::Status::failed_precondition("update conflict")),
            Error::Conflict(_)
        ));
        assert!(Error::from(tonic::Status::unavailable("x")).is_transient());
        assert!(Error::from(tonic::Status::deadline_exceeded("x")).is_transient());
        assert!(!Error::from(tonic::Status::aborted("x")).is_transient());
        assert_eq!(
            Error::from(tonic::Status::aborted("x")).code(),
            Some(Code::Aborted)
        );
    }
}
