//! Conversions between proto fields and domain values that every service needs: timestamps,
//! enums (the domain's, carried by the proto enums of the same names; zero values are
//! `*_UNSPECIFIED` and never valid input), field masks, and idempotency keys.

use chrono::{DateTime, Utc};
pub use pc_api::requests::{IdempotentRequest, ListRequest, ListResponse};
use pc_api::{channel::v1 as channel, partner::v1 as partner, relationship::v1 as relationship, types::v1 as types};
use pc_domain::{
    AssignmentState, Cloud, Error, LinkState, PageKey, PageRequest, PartnerState, Principal, ProductFamily,
    ProgramRole, RelationshipState, SalesChannel, SubscriptionState, TransferState,
    admin_relationships::{AdminRelationshipState, AdminRole},
};
use pc_store::{Database, DatabaseConnection, idempotency::IdempotencyKey, write::Row};
use prost_types::{FieldMask, Timestamp};

/// A domain enum and the proto enum that carries it over the API.
pub trait ProtoEnum: Sized + Copy {
    /// The proto number, for responses.
    fn to_proto(self) -> i32;
    /// The domain value of a proto number; `None` for the unspecified zero and unknown numbers.
    fn from_proto(value: i32) -> Option<Self>;
}

macro_rules! proto_enum {
    ($($domain:ident => $proto:path { $($variant:ident),+ $(,)? };)+) => {$(
        impl ProtoEnum for $domain {
            fn to_proto(self) -> i32 {
                use $proto as Proto;
                match self {
                    $(Self::$variant => Proto::$variant as i32),+
                }
            }

            fn from_proto(value: i32) -> Option<Self> {
                use $proto as Proto;
                match Proto::try_from(value).ok()? {
                    $(Proto::$variant => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    )+};
}

proto_enum! {
    Cloud => types::Cloud { Global, UsGovernment, China, Germany };
    ProgramRole => partner::ProgramRole { DirectBillPartner, IndirectProvider, IndirectReseller };
    PartnerState => partner::partner::State { Active, Suspended };
    LinkState => relationship::reseller_link::State { Invited, Active, Declined, Ended, Expired };
    RelationshipState => relationship::customer_relationship::State { Pending, Active, Declined, Ended, Expired };
    ProductFamily => channel::ProductFamily { Productivity, Azure, Dynamics, Security, Other };
    SalesChannel => channel::SalesChannel { ProgramDirectBill, ProgramIndirect, VendorDirect, EnterpriseAgreement };
    SubscriptionState => channel::subscription::State { Active, Suspended, Cancelled };
    AssignmentState => channel::support_assignment::State { Requested, Active, Declined, Ended, Expired };
    TransferState => channel::transfer::State { Pending, Accepted, Declined, Cancelled, Expired };
    AdminRelationshipState => relationship::admin_relationship::State {
        ApprovalPending, Active, Declined, Expired, Terminated
    };
    AdminRole => relationship::admin_relationship::Role {
        HelpdeskAgent, LicenseAdmin, BillingReader, SupportEngineer, GlobalAdmin
    };
}

/// Answers a List with one page ([`pc_domain::page::list`]): `filter` says whose rows and which
/// (its `Debug` form binds the page token to it, so a token is refused under another caller or
/// filter), `fetch` reads the rows after the page token on the connection it is given (the read
/// replica's or the primary's, [`Database::list`]), `shape` turns each into its message.
pub async fn list_page<R, M, Fetch, Fetching>(
    db: &Database,
    request: &R,
    pages: &PageKey,
    filter: &impl std::fmt::Debug,
    fetch: Fetch,
    shape: impl FnMut(M) -> Result<<R::Response as ListResponse>::Item, Error>,
) -> Result<R::Response, Error>
where
    R: ListRequest,
    M: Row,
    Fetch: Fn(DatabaseConnection, PageRequest) -> Fetching,
    Fetching: Future<Output = Result<Vec<M>, Error>>,
{
    let (page_size, page_token) = (request.page_size(), request.page_token());
    let query = format!("{filter:?}");
    let read = async |page| db.list(|connection| fetch(connection, page)).await;
    let (items, next_page_token) =
        pc_domain::page::list(page_size, page_token, &query, pages, read, Row::id, shape).await?;
    Ok(R::Response::from_page(items, next_page_token))
}

/// The idempotency key of `request` to `method` by `caller`, or `None` without a `request_id`.
/// The request is hashed without its `request_id`, so any spelling of one UUID is one key.
pub fn idempotency_key<R: IdempotentRequest>(
    caller: &Principal,
    method: &'static str,
    request: &R,
) -> Result<Option<IdempotencyKey>, Error> {
    if request.request_id().is_empty() {
        return Ok(None);
    }
    let mut unnamed = request.clone();
    unnamed.clear_request_id();
    IdempotencyKey::new(caller, method, request.request_id(), &unnamed.encode_to_vec())
}

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: time.timestamp(), nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0) }
}

pub fn optional_timestamp(time: Option<DateTime<Utc>>) -> Option<Timestamp> {
    time.map(timestamp)
}

/// A number of whole days as a `google.protobuf.Duration`.
pub fn days(days: i32) -> prost_types::Duration {
    prost_types::Duration { seconds: i64::from(days) * 86_400, nanos: 0 }
}

/// A required enum field: the unspecified zero value and unknown numbers are INVALID_ARGUMENT.
pub fn required_enum<E: ProtoEnum>(field: &str, value: i32) -> Result<E, Error> {
    if value == 0 {
        return Err(Error::invalid(field, "is required (the *_UNSPECIFIED value is not accepted)"));
    }
    E::from_proto(value).ok_or_else(|| Error::invalid(field, format!("{value} is not a known value")))
}

/// An enum list filter: unspecified means "no filter"; unknown numbers are INVALID_ARGUMENT.
pub fn filter_enum<E: ProtoEnum>(field: &str, value: i32) -> Result<Option<E>, Error> {
    if value == 0 { Ok(None) } else { required_enum(field, value).map(Some) }
}

/// Longest field mask accepted, in paths; any real mask is far shorter.
const MAX_MASK_PATHS: usize = 32;

/// The paths of an update mask, checked against the fields `mutable` lists. `*` means all of
/// them; an empty mask means the ones `is_set` reports as present in the request (AIP-134).
pub fn update_paths<'a>(
    mask: Option<&FieldMask>,
    mutable: &[&'a str],
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<&'a str>, Error> {
    let paths = mask.map(|mask| mask.paths.as_slice()).unwrap_or_default();
    if paths.len() > MAX_MASK_PATHS {
        return Err(Error::invalid("update_mask", "has too many paths"));
    }
    if paths.is_empty() {
        let set: Vec<&str> = mutable.iter().copied().filter(|field| is_set(field)).collect();
        if set.is_empty() {
            return Err(Error::invalid("update_mask", "names no field to change"));
        }
        return Ok(set);
    }
    if paths.len() == 1 && paths[0] == "*" {
        return Ok(mutable.to_vec());
    }
    let mut chosen = Vec::new();
    for path in paths {
        let field = mutable.iter().find(|field| **field == path.as_str()).ok_or_else(|| {
            Error::invalid(
                "update_mask",
                format!("`{}` cannot be updated; updatable: {}", truncate(path), mutable.join(", ")),
            )
        })?;
        if !chosen.contains(field) {
            chosen.push(*field);
        }
    }
    Ok(chosen)
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> FieldMask {
        FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }
    }

    #[test]
    fn masks_pick_known_fields_and_refuse_others() {
        let mutable = ["display_name", "country_code"];
        assert_eq!(update_paths(Some(&mask(&["country_code"])), &mutable, |_| true).ok(), Some(vec!["country_code"]));
        assert_eq!(update_paths(Some(&mask(&["*"])), &mutable, |_| false).ok(), Some(mutable.to_vec()));
        assert_eq!(update_paths(None, &mutable, |f| f == "display_name").ok(), Some(vec!["display_name"]));
        assert!(update_paths(Some(&mask(&["state"])), &mutable, |_| true).is_err());
        assert!(update_paths(None, &mutable, |_| false).is_err());
    }

    #[test]
    fn enum_inputs_refuse_unspecified_and_unknown_values() {
        assert!(required_enum::<Cloud>("cloud", 0).is_err());
        assert!(required_enum::<Cloud>("cloud", 99).is_err());
        assert_eq!(required_enum::<Cloud>("cloud", 1).ok(), Some(Cloud::Global));
        assert_eq!(filter_enum::<Cloud>("cloud", 0).ok(), Some(None));
    }

    /// Every domain value has its proto value of the same name and comes back from it.
    fn round_trips<E: ProtoEnum + PartialEq + std::fmt::Debug>(
        all: &[E],
        proto_name: impl Fn(i32) -> Option<String>,
        name: impl Fn(E) -> &'static str,
        prefix: &str,
    ) {
        for value in all {
            let number = value.to_proto();
            assert_ne!(number, 0, "{value:?}");
            assert_eq!(proto_name(number), Some(format!("{prefix}{}", name(*value))));
            assert_eq!(E::from_proto(number), Some(*value));
        }
    }

    #[test]
    fn domain_enums_travel_as_the_proto_values_of_the_same_name() {
        let name = |n: Option<&str>| n.map(str::to_owned);
        round_trips(
            Cloud::ALL,
            |n| name(types::Cloud::try_from(n).ok().map(|p| p.as_str_name())),
            Cloud::as_str,
            "CLOUD_",
        );
        round_trips(
            ProgramRole::ALL,
            |n| name(partner::ProgramRole::try_from(n).ok().map(|p| p.as_str_name())),
            ProgramRole::as_str,
            "PROGRAM_ROLE_",
        );
        round_trips(
            PartnerState::ALL,
            |n| name(partner::partner::State::try_from(n).ok().map(|p| p.as_str_name())),
            PartnerState::as_str,
            "STATE_",
        );
        round_trips(
            LinkState::ALL,
            |n| name(relationship::reseller_link::State::try_from(n).ok().map(|p| p.as_str_name())),
            LinkState::as_str,
            "STATE_",
        );
        round_trips(
            RelationshipState::ALL,
            |n| name(relationship::customer_relationship::State::try_from(n).ok().map(|p| p.as_str_name())),
            RelationshipState::as_str,
            "STATE_",
        );
        round_trips(
            ProductFamily::ALL,
            |n| name(channel::ProductFamily::try_from(n).ok().map(|p| p.as_str_name())),
            ProductFamily::as_str,
            "PRODUCT_FAMILY_",
        );
        round_trips(
            SalesChannel::ALL,
            |n| name(channel::SalesChannel::try_from(n).ok().map(|p| p.as_str_name())),
            SalesChannel::as_str,
            "SALES_CHANNEL_",
        );
        round_trips(
            SubscriptionState::ALL,
            |n| name(channel::subscription::State::try_from(n).ok().map(|p| p.as_str_name())),
            SubscriptionState::as_str,
            "STATE_",
        );
        round_trips(
            AssignmentState::ALL,
            |n| name(channel::support_assignment::State::try_from(n).ok().map(|p| p.as_str_name())),
            AssignmentState::as_str,
            "STATE_",
        );
    }
}
