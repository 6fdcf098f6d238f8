//! The one error type of partner-center. Every layer (validation, authorization, rules,
//! persistence) returns [`Error`]; the gRPC boundary maps it to a status in one function,
//! `pc_server::status`, and the store classifies database errors (`pc_store::errors`).

/// The `google.rpc.ErrorInfo.domain` of every error this system raises.
pub const ERROR_DOMAIN: &str = "partnercenter";

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A broken domain rule, named so that clients can branch on it (`google.rpc.ErrorInfo.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Rule 1: a tenant enrolled as a partner cannot be a customer in the same cloud.
    PartnerAsCustomer,
    /// Rule 2: resources of different clouds are never joined.
    CrossCloud,
    /// Rule 3: the partner's program role does not allow this.
    RoleNotAllowed,
    /// Rule 3: a suspended partner starts nothing new.
    PartnerSuspended,
    /// Rules 3 and 6: an indirect reseller needs an ACTIVE link to the provider.
    NoActiveResellerLink,
    /// Rule 5: the resource's state does not allow this transition.
    InvalidTransition,
    /// Rule 8: ACTIVE subscriptions still depend on what is being ended.
    ActiveSubscriptions,
    /// Rule 6: the partner holds no ACTIVE relationship with the customer.
    NoActiveRelationship,
    /// Rule 7: a support request that the multi-channel rule does not allow.
    SupportNotAllowed,
    /// Rule 11: a transfer its rule does not allow (to itself, of subscriptions that do not qualify).
    TransferNotAllowed,
    /// Rule 11: a subscription is already in another PENDING transfer.
    SubscriptionInTransfer,
    /// Rule 12: admin relationships are not offered in the partner's cloud.
    NotOfferedInCloud,
    /// Rule 15: the invitation, request or transfer passed its deadline unanswered.
    Expired,
}

impl Reason {
    /// Every reason, for the documentation's list and its test.
    pub const ALL: [Reason; 13] = [
        Self::PartnerAsCustomer,
        Self::CrossCloud,
        Self::RoleNotAllowed,
        Self::PartnerSuspended,
        Self::NoActiveResellerLink,
        Self::InvalidTransition,
        Self::ActiveSubscriptions,
        Self::NoActiveRelationship,
        Self::SupportNotAllowed,
        Self::TransferNotAllowed,
        Self::SubscriptionInTransfer,
        Self::NotOfferedInCloud,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PartnerAsCustomer => "PARTNER_AS_CUSTOMER",
            Self::CrossCloud => "CROSS_CLOUD",
            Self::RoleNotAllowed => "ROLE_NOT_ALLOWED",
            Self::PartnerSuspended => "PARTNER_SUSPENDED",
            Self::NoActiveResellerLink => "NO_ACTIVE_RESELLER_LINK",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::ActiveSubscriptions => "ACTIVE_SUBSCRIPTIONS",
            Self::NoActiveRelationship => "NO_ACTIVE_RELATIONSHIP",
            Self::SupportNotAllowed => "SUPPORT_NOT_ALLOWED",
            Self::TransferNotAllowed => "TRANSFER_NOT_ALLOWED",
            Self::SubscriptionInTransfer => "SUBSCRIPTION_IN_TRANSFER",
            Self::NotOfferedInCloud => "NOT_OFFERED_IN_CLOUD",
            Self::Expired => "EXPIRED",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or malformed.
    #[error("invalid {field}: {description}")]
    InvalidArgument { field: String, description: String },
    /// The named resource does not exist.
    #[error("{name} not found")]
    NotFound { name: String },
    /// A uniqueness rule of the directory (tenant or domain per cloud, one live link per pair).
    #[error("{message}")]
    AlreadyExists { reason: &'static str, message: String },
    /// A domain rule forbids the change.
    #[error("{reason}: {message}")]
    FailedPrecondition { reason: Reason, message: String },
    /// The caller sent an etag that no longer matches the stored resource.
    #[error("etag mismatch for {name}: the resource changed since it was read")]
    StaleEtag { name: String },
    /// The change lost a race with a concurrent change and may be retried.
    #[error("{0}")]
    Conflict(String),
    /// A position the change feed no longer holds (`field` is the cursor or page token).
    #[error("{field} is older than the events the feed keeps: {message}")]
    OutOfRange { field: String, message: String },
    /// The caller is authenticated but may not do this; `permission` names what it lacks when the
    /// refused method asks for one (rule 13), so it learns what to ask for.
    #[error("{message}")]
    PermissionDenied { message: String, permission: Option<String> },
    /// No usable credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// Anything else: a bug or an unexpected database failure. Logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// A database failure nobody expected at the call site. The store says what it means
    /// (`pc_store::errors`: transient, unreachable, or a bug) by looking inside.
    #[error("database error: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The store's `?` on SeaORM results. Only the conversion lives here (Rust's orphan rule puts it
/// next to [`Error`]); the classification is the store's.
#[cfg(feature = "persistence")]
impl From<sea_orm::DbErr> for Error {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(Box::new(error))
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), description: description.into() }
    }

    pub fn not_found(name: impl Into<String>) -> Self {
        Self::NotFound { name: name.into() }
    }

    pub fn rule(reason: Reason, message: impl Into<String>) -> Self {
        Self::FailedPrecondition { reason, message: message.into() }
    }

    pub fn already_exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::AlreadyExists { reason, message: message.into() }
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied { message: message.into(), permission: None }
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(context.to_string())
    }
}
