//! Mapping [`Error`] to `tonic::Status`, in one function: every handler's error passes through
//! [`status`] at the gRPC boundary, with rich details. Every status carries a `google.rpc.ErrorInfo`
//! (AIP-193) whose reason a client can switch on, beside `BadRequest`, `ResourceInfo` or
//! `RetryInfo` where they apply; README's "Error reasons" lists every reason with its code.

use std::collections::HashMap;

use pc_domain::{Error, error::ERROR_DOMAIN};
use pc_store::errors::{DatabaseFailure, classify};
use tonic::{Code, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

fn error_info(reason: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

/// `code` with `message` and an ErrorInfo of `reason` alone: most answers' shape, here and in
/// authentication and admission, which refuse before a handler runs.
pub(crate) fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(code, message, error_info(reason, HashMap::new()))
}

/// The status of `error`: the one place every code is decided. Internal and unexpected database
/// errors are logged here and never shown to callers.
pub fn status(error: Error) -> Status {
    let message = error.to_string();
    match error {
        Error::InvalidArgument { field, description } => {
            let mut details = ErrorDetails::with_bad_request_violation(field.clone(), description);
            details.set_error_info("FIELD_INVALID", ERROR_DOMAIN, HashMap::from([("field".to_owned(), field)]));
            Status::with_error_details(Code::InvalidArgument, message, details)
        }
        // The same reason whether the resource does not exist or the caller may not read it: the
        // answer never tells which. The name is the caller's own.
        Error::NotFound { name } => {
            let mut details = ErrorDetails::with_resource_info("", name.clone(), "", "not found");
            details.set_error_info("RESOURCE_NOT_FOUND", ERROR_DOMAIN, HashMap::from([("resource".to_owned(), name)]));
            Status::with_error_details(Code::NotFound, message, details)
        }
        Error::AlreadyExists { reason, .. } => with_reason(Code::AlreadyExists, reason, message),
        Error::FailedPrecondition { reason, .. } => with_reason(Code::FailedPrecondition, reason.as_str(), message),
        Error::StaleEtag { name } => Status::with_error_details(
            Code::Aborted,
            message,
            error_info("STALE_ETAG", HashMap::from([("resource".to_owned(), name)])),
        ),
        Error::Conflict(_) => with_reason(Code::Aborted, "CONCURRENT_MODIFICATION", message),
        Error::OutOfRange { field, .. } => Status::with_error_details(
            Code::OutOfRange,
            message,
            error_info("CURSOR_EXPIRED", HashMap::from([("field".to_owned(), field)])),
        ),
        // The permission the method asks for (rule 13), when it names one: what to ask for, and
        // nothing of what the caller may not see.
        Error::PermissionDenied { permission, .. } => Status::with_error_details(
            Code::PermissionDenied,
            message,
            error_info("PERMISSION_DENIED", permission.map(|p| ("permission".to_owned(), p)).into_iter().collect()),
        ),
        Error::Unauthenticated(_) => with_reason(Code::Unauthenticated, "TOKEN_INVALID", message),
        Error::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            internal()
        }
        Error::Database(error) => match classify(error.as_ref()) {
            DatabaseFailure::Transient => with_reason(
                Code::Aborted,
                "TRANSIENT_CONFLICT",
                "the database aborted the transaction under contention; retry",
            ),
            DatabaseFailure::Unreachable => {
                tracing::warn!(%error, "database unavailable");
                with_reason(Code::Unavailable, "DATABASE_UNAVAILABLE", "service temporarily unavailable, retry later")
            }
            DatabaseFailure::TimedOut => crate::admission::ran_out_of_time(),
            DatabaseFailure::Other => {
                tracing::error!(%error, "database error");
                internal()
            }
        },
    }
}

/// INTERNAL, saying nothing of what went wrong (it is logged where it is decided).
fn internal() -> Status {
    with_reason(Code::Internal, "INTERNAL", "internal error")
}

/// A handler's result as the gRPC answer: its value, or the status of its error.
pub fn respond<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(status)
}

/// The messages of a server-streaming RPC, as tonic sends them.
pub type Streamed<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A handler's stream of messages, each error mapped like a unary call's ([`status`]): one that
/// fails mid-stream ends it with that status.
pub fn streamed<T: 'static>(
    messages: impl tokio_stream::Stream<Item = Result<T, Error>> + Send + 'static,
) -> Streamed<T> {
    use tokio_stream::StreamExt;
    Box::pin(messages.map(|message| message.map_err(status)))
}

#[cfg(test)]
mod tests {
    use pc_domain::Reason;

    use super::*;

    #[test]
    fn the_codec_refuses_in_the_same_error_domain() {
        assert_eq!(pc_api::codec::ERROR_DOMAIN, ERROR_DOMAIN);
    }

    #[test]
    fn internal_details_never_reach_the_caller() {
        let status = status(Error::internal("password=hunter2 in connection string"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }

    #[test]
    fn rule_violations_carry_their_reason() {
        let status = status(Error::rule(Reason::CrossCloud, "partner is in another cloud"));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("CROSS_CLOUD"));
        let info = status.get_details_error_info().map(|info| info.reason);
        assert_eq!(info.as_deref(), Some("CROSS_CLOUD"));
    }

    #[test]
    fn invalid_arguments_name_the_field() {
        let status = status(Error::invalid("partner.tenant_id", "not a UUID"));
        let violations = status.get_details_bad_request().map(|b| b.field_violations);
        assert_eq!(violations.map(|v| v[0].field.clone()).as_deref(), Some("partner.tenant_id"));
    }
}
