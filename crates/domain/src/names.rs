//! Typed resource names (`partners/{id}`, `customers/{id}`, ...). Ids are server-assigned UUIDv7s,
//! so ordering by id is ordering by creation time, which keyset pagination relies on.

use std::fmt;

use uuid::Uuid;

use crate::{Error, ResourceKind};

macro_rules! resource_id {
    ($(#[$doc:meta])* $type:ident, $collection:literal, $kind:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $type(pub ::uuid::Uuid);

        impl $type {
            /// The collection segment of this resource's names.
            pub const COLLECTION: &'static str = $collection;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(::uuid::Uuid::now_v7())
            }

            /// Parses `collection/{uuid}` from the request field `field`.
            pub fn parse(field: &str, name: &str) -> Result<Self, $crate::Error> {
                $crate::names::parse_name(Self::COLLECTION, field, name).map(Self)
            }

            /// Like [`Self::parse`], but an empty field means "none".
            pub fn parse_optional(field: &str, name: &str) -> Result<Option<Self>, $crate::Error> {
                if name.is_empty() {
                    Ok(None)
                } else {
                    Self::parse(field, name).map(Some)
                }
            }

            pub fn name(&self) -> String {
                self.to_string()
            }
        }

        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}/{}", Self::COLLECTION, self.0)
            }
        }

        impl $crate::ResourceId for $type {
            const KIND: $crate::ResourceKind = $crate::ResourceKind::$kind;

            fn parse(field: &str, name: &str) -> Result<Self, $crate::Error> {
                Self::parse(field, name)
            }

            fn uuid(self) -> ::uuid::Uuid {
                self.0
            }

            fn from_uuid(uuid: ::uuid::Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}
pub(crate) use resource_id;

/// What code generic over resources knows of their ids: how to read one from a name, and the
/// UUID a row is keyed by.
pub trait ResourceId: Copy + fmt::Display + Send + Sync + 'static {
    /// The kind of resource it names.
    const KIND: ResourceKind;
    /// Parses `collection/{uuid}` from the request field `field`.
    fn parse(field: &str, name: &str) -> Result<Self, Error>;
    fn uuid(self) -> Uuid;
    fn from_uuid(uuid: Uuid) -> Self;
}

/// Declares every resource the program keeps (`crate`'s root invokes it, next to the resources'
/// modules): its typed id, the collection its names start with, and its [`ResourceKind`].
macro_rules! resources {
    ($($(#[$doc:meta])* $type:ident, $collection:literal, $kind:ident, $stored:literal;)+) => {
        $($crate::names::resource_id!($(#[$doc])* $type, $collection, $kind);)+

        /// The kinds of resource, as a change names them (`pc_domain::Change::kind`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ResourceKind {
            $($kind),+
        }

        impl ResourceKind {
            pub const ALL: &'static [Self] = &[$(Self::$kind),+];

            /// The stored name (`CUSTOMER_RELATIONSHIP`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$kind => $stored),+
                }
            }

            /// The collection its names start with (`customerRelationships`).
            pub fn collection(self) -> &'static str {
                match self {
                    $(Self::$kind => $collection),+
                }
            }
        }
    };
}
pub(crate) use resources;

impl ResourceKind {
    /// The type's name in the change feed (`reseller_link`), which event types begin with.
    pub fn type_name(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == text)
    }

    /// The kind of the resource named `name`, from its collection.
    pub fn of_name(name: &str) -> Option<Self> {
        let collection = name.split('/').next()?;
        Self::ALL.iter().copied().find(|kind| kind.collection() == collection)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn parse_name(collection: &str, field: &str, name: &str) -> Result<Uuid, Error> {
    if name.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    let id = name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| Error::invalid(field, format!("must be a resource name `{collection}/{{id}}`")))?;
    // Only the canonical hyphenated lowercase form, so one resource has exactly one name.
    match Uuid::try_parse(id) {
        Ok(uuid) if uuid.hyphenated().to_string() == id => Ok(uuid),
        _ => Err(Error::invalid(field, format!("`{collection}/{{id}}` needs a lowercase UUID id"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CustomerId, PartnerId};

    #[test]
    fn names_round_trip() {
        let id = PartnerId::generate();
        assert_eq!(PartnerId::parse("name", &id.name()).ok(), Some(id));
    }

    #[test]
    fn names_of_another_collection_are_refused() {
        let customer = CustomerId::generate().name();
        let err = PartnerId::parse("name", &customer).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("partners/{id}")));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in ["", "partners/", "partners/abc", "partners/../x", "partnersX/0190"] {
            assert!(PartnerId::parse("name", bad).is_err(), "{bad:?} accepted");
        }
        let upper = format!("partners/{}", Uuid::now_v7().hyphenated().to_string().to_uppercase());
        assert!(PartnerId::parse("name", &upper).is_err());
    }
}
