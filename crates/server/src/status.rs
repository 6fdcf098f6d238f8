//! Mapping [`Error`] to `tonic::Status`, in one function: every handler's error passes through
//! [`status`] at the gRPC boundary, with rich details (`google.rpc.BadRequest`, `ErrorInfo`).

use std::collections::HashMap;

use pc_domain::{Error, error::ERROR_DOMAIN};
use pc_store::errors::{DatabaseFailure, classify};
use tonic::{Code, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

fn error_info(reason: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

/// The status of `error`: the one place every code is decided. Internal and unexpected database
/// errors are logged here and never shown to callers.
pub fn status(error: Error) -> Status {
    let message = error.to_string();
    match error {
        Error::InvalidArgument { field, description } => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(field, description),
        ),
        Error::NotFound { name } => Status::with_error_details(
            Code::NotFound,
            message,
            ErrorDetails::with_resource_info("", name, "", "not found"),
        ),
        Error::AlreadyExists { reason, .. } => {
            Status::with_error_details(Code::AlreadyExists, message, error_info(reason, HashMap::new()))
        }
        Error::FailedPrecondition { reason, .. } => {
            Status::with_error_details(Code::FailedPrecondition, message, error_info(reason.as_str(), HashMap::new()))
        }
        Error::StaleEtag { name } => Status::with_error_details(
            Code::Aborted,
            message,
            error_info("STALE_ETAG", HashMap::from([("resource".to_owned(), name)])),
        ),
        Error::Conflict(_) => {
            Status::with_error_details(Code::Aborted, message, error_info("CONCURRENT_MODIFICATION", HashMap::new()))
        }
        Error::PermissionDenied(_) => Status::permission_denied(message),
        Error::Unauthenticated(_) => Status::unauthenticated(message),
        Error::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            Status::internal("internal error")
        }
        Error::Database(error) => match classify(error.as_ref()) {
            DatabaseFailure::Transient => Status::with_error_details(
                Code::Aborted,
                "the database aborted the transaction under contention; retry",
                error_info("TRANSIENT_CONFLICT", HashMap::new()),
            ),
            DatabaseFailure::Unreachable => {
                tracing::warn!(%error, "database unavailable");
                Status::unavailable("service temporarily unavailable, retry later")
            }
            DatabaseFailure::TimedOut => crate::admission::ran_out_of_time(),
            DatabaseFailure::Other => {
                tracing::error!(%error, "database error");
                Status::internal("internal error")
            }
        },
    }
}

/// A handler's result as the gRPC answer: its value, or the status of its error.
pub fn respond<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(status)
}

#[cfg(test)]
mod tests {
    use pc_domain::Reason;

    use super::*;

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
