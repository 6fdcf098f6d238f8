//! Customers (their facts, the parties of their changes, their rules): who creates them (operators,
//! and ACTIVE partners of the customer's cloud), rule 1 at creation, and rule 9's answer to "which
//! partner reads which customer".

use crate::customer_relationships::CustomerRelationship;
use crate::partners::Partner;
use crate::{
    Cloud, CustomerId, Error, Parties, PartnerId, Principal, Reason, RelationshipState, Role, TenantId, rules,
};

/// A customer of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub cloud: Cloud,
    pub tenant: TenantId,
    /// The principal that created it (`operator` or `partners/{id}`).
    pub created_by: String,
}

impl Customer {
    pub fn parties(&self) -> Parties {
        let creator = self.created_by.strip_prefix("partners/").map(|_| &self.created_by);
        Parties::default().with(Role::Customer, Some(self.id)).with(Role::Creator, creator)
    }
}

/// Customers are created by operators and partners, never by customers.
pub fn may_create(caller: &Principal) -> Result<(), Error> {
    match caller {
        Principal::Customer(_) => Err(Error::denied("customers are created by operators and partners")),
        Principal::Operator | Principal::Partner(_) => Ok(()),
    }
}

/// A partner creating a customer: enrolled (`creator` is its row, if any), ACTIVE (rule 3), and of
/// the customer's cloud (rule 2).
pub fn creator_may_create(partner: PartnerId, creator: Option<&Partner>, cloud: Cloud) -> Result<(), Error> {
    let creator = creator.ok_or_else(|| Error::denied(format!("{partner} is not an enrolled partner")))?;
    rules::partner_active(creator)?;
    if creator.cloud != cloud {
        return Err(Error::rule(
            Reason::CrossCloud,
            format!("{partner} is in the {} cloud and cannot create customers in {cloud}", creator.cloud),
        ));
    }
    Ok(())
}

/// Rule 9 for customers: a partner reads a customer it holds an ACTIVE relationship with (as the
/// partner or as the provider that bills it), or one it created while no partner holds an ACTIVE
/// relationship with it (a partner-created customer is its creator's private record until the
/// customer accepts someone). Asking is not being granted: `active` holds the customer's ACTIVE
/// relationships, and a PENDING, DECLINED or ENDED one shows nothing. The store's
/// `customers::list` is this rule as SQL.
pub fn partner_sees(partner: PartnerId, customer: &Customer, active: &[CustomerRelationship]) -> bool {
    let active: Vec<_> = active.iter().filter(|r| r.state == RelationshipState::Active).collect();
    let holds_active = active.iter().any(|r| r.partner == partner || r.indirect_provider == Some(partner));
    holds_active || (customer.created_by == partner.name() && active.is_empty())
}

/// Rule 9: whether `caller` reads the customer `id`: operators any, a customer itself, a partner
/// what [`partner_sees`] (`partner_sees` is its verdict).
pub fn may_see(caller: &Principal, id: CustomerId, partner_sees: bool) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::Customer(me) => *me == id,
        Principal::Partner(_) => partner_sees,
    }
}

/// GetCustomer's answer (rule 9): operators read any customer, a customer itself, a partner what
/// [`partner_sees`] (`partner_sees` is its verdict). A missing customer is NOT_FOUND only to
/// callers that would see it; anyone else is PERMISSION_DENIED whether or not it exists.
pub fn reveal<T>(caller: &Principal, id: CustomerId, found: Option<T>, partner_sees: bool) -> Result<T, Error> {
    let may_see = may_see(caller, id, partner_sees);
    match found {
        Some(customer) if may_see => Ok(customer),
        None if may_see => Err(Error::not_found(id.name())),
        _ => Err(Error::denied(format!("{caller} may not read {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use crate::{CustomerRelationshipId, ProgramRole};

    fn relationship(partner: PartnerId, customer: &Customer, state: RelationshipState) -> CustomerRelationship {
        CustomerRelationship {
            id: CustomerRelationshipId::generate(),
            partner,
            customer: customer.id,
            indirect_provider: None,
            state,
        }
    }

    #[test]
    fn a_partner_reads_a_customer_it_holds_an_active_relationship_with_or_bills() {
        let customer = customer(Cloud::Global);
        let (partner, provider, other) = (PartnerId::generate(), PartnerId::generate(), PartnerId::generate());
        let mut active = relationship(partner, &customer, RelationshipState::Active);
        active.indirect_provider = Some(provider);
        assert!(partner_sees(partner, &customer, &[active]));
        assert!(partner_sees(provider, &customer, &[active]));
        assert!(!partner_sees(other, &customer, &[active]));
        for state in [RelationshipState::Pending, RelationshipState::Declined, RelationshipState::Ended] {
            assert!(!partner_sees(partner, &customer, &[relationship(partner, &customer, state)]), "{state}");
        }
    }

    #[test]
    fn a_created_customer_is_its_creators_until_someone_holds_it() {
        let creator = PartnerId::generate();
        let customer = Customer { created_by: creator.name(), ..customer(Cloud::Global) };
        assert!(partner_sees(creator, &customer, &[]));
        let someone = relationship(PartnerId::generate(), &customer, RelationshipState::Active);
        assert!(!partner_sees(creator, &customer, &[someone]));
    }

    #[test]
    fn only_active_partners_of_the_customers_cloud_create_customers() {
        let id = PartnerId::generate();
        let creator = Partner { id, ..partner(ProgramRole::DirectBillPartner) };
        assert!(creator_may_create(id, Some(&creator), Cloud::Global).is_ok());
        assert_eq!(reason(creator_may_create(id, Some(&creator), Cloud::China)), "CROSS_CLOUD");
        assert_eq!(reason(creator_may_create(id, Some(&suspended(creator)), Cloud::Global)), "PARTNER_SUSPENDED");
        assert!(matches!(creator_may_create(id, None, Cloud::Global), Err(Error::PermissionDenied { .. })));
        assert!(matches!(
            may_create(&Principal::Customer(CustomerId::generate())),
            Err(Error::PermissionDenied { .. })
        ));
    }

    #[test]
    fn a_missing_customer_is_not_found_only_to_who_would_see_it() {
        let id = CustomerId::generate();
        assert!(matches!(reveal::<()>(&Principal::Operator, id, None, false), Err(Error::NotFound { .. })));
        assert!(matches!(reveal::<()>(&Principal::Customer(id), id, None, false), Err(Error::NotFound { .. })));
        let other = Principal::Customer(CustomerId::generate());
        assert!(matches!(reveal(&other, id, Some(()), false), Err(Error::PermissionDenied { .. })));
        let partner = Principal::Partner(PartnerId::generate());
        assert!(matches!(reveal::<()>(&partner, id, None, false), Err(Error::PermissionDenied { .. })));
        assert!(reveal(&partner, id, Some(()), true).is_ok());
    }
}
