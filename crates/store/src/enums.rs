//! How proto enums are stored: as their value name without the enum prefix (`CLOUD_GLOBAL` is
//! stored as `GLOBAL`). The proto enums are the domain enums; this is their one column mapping.

use pc_api::{
    channel::v1::{ProductFamily, SalesChannel, subscription, support_assignment},
    partner::v1::{ProgramRole, partner},
    relationship::v1::{customer_relationship, reseller_link},
    types::v1::Cloud,
};
use pc_domain::Error;

/// A proto enum stored in a text column.
pub trait DbEnum: Sized + Copy {
    /// The stored form; `None` for the `*_UNSPECIFIED` value, which is never stored.
    fn to_db(self) -> &'static str;
    /// Reads a stored value back; anything unknown is a corrupt row, hence internal.
    fn from_db(value: &str) -> Result<Self, Error>;
    /// The proto `i32` of a stored value, for building responses.
    fn db_to_i32(value: &str) -> Result<i32, Error>;
}

macro_rules! db_enum {
    ($type:ty, $prefix:literal) => {
        impl DbEnum for $type {
            fn to_db(self) -> &'static str {
                let name = self.as_str_name();
                name.strip_prefix($prefix).unwrap_or(name)
            }

            fn from_db(value: &str) -> Result<Self, Error> {
                <$type>::from_str_name(&format!("{}{}", $prefix, value))
                    .filter(|parsed| *parsed as i32 != 0)
                    .ok_or_else(|| Error::internal(format!("unknown stored {} {value:?}", stringify!($type))))
            }

            fn db_to_i32(value: &str) -> Result<i32, Error> {
                Self::from_db(value).map(|parsed| parsed as i32)
            }
        }
    };
}

db_enum!(Cloud, "CLOUD_");
db_enum!(ProgramRole, "PROGRAM_ROLE_");
db_enum!(partner::State, "STATE_");
db_enum!(reseller_link::State, "STATE_");
db_enum!(customer_relationship::State, "STATE_");
db_enum!(ProductFamily, "PRODUCT_FAMILY_");
db_enum!(SalesChannel, "SALES_CHANNEL_");
db_enum!(subscription::State, "STATE_");
db_enum!(support_assignment::State, "STATE_");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_drop_the_prefix_and_round_trip() {
        assert_eq!(Cloud::UsGovernment.to_db(), "US_GOVERNMENT");
        assert_eq!(Cloud::from_db("US_GOVERNMENT").ok(), Some(Cloud::UsGovernment));
        assert_eq!(ProgramRole::IndirectReseller.to_db(), "INDIRECT_RESELLER");
        assert_eq!(reseller_link::State::Invited.to_db(), "INVITED");
    }

    #[test]
    fn unspecified_and_unknown_values_are_never_read_back() {
        assert!(Cloud::from_db("UNSPECIFIED").is_err());
        assert!(Cloud::from_db("MARS").is_err());
    }
}
