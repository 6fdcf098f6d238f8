//! Reads that apply rule 9 before any rule could describe what they read: a handler that acts on
//! a customer for a partner (sells to it, takes its subscriptions over, asks it for admin roles)
//! first learns whether the caller may read that customer at all, so a refusal never tells a
//! partner whether a customer it does not work with exists.

use pc_domain::{CustomerId, Error, PartnerId, Principal};
use pc_store::{DatabaseTransaction, customers};

/// The customer `partner` acts on, if `caller` may read it (rule 9, through
/// `pc_domain::subscriptions::customer_to_sell_to`): an operator always (told when it does not
/// exist), a partner while it holds an ACTIVE relationship with it or created it unclaimed;
/// anyone else is PERMISSION_DENIED whether or not it exists.
pub async fn customer_for(
    txn: &DatabaseTransaction,
    caller: &Principal,
    partner: PartnerId,
    customer_id: CustomerId,
) -> Result<customers::Model, Error> {
    let customer = customers::find(txn, customer_id).await?;
    let partner_sees = match (caller, &customer) {
        (Principal::Partner(_), Some(customer)) => {
            let active = customers::active_relationships(txn, customer_id).await?;
            pc_domain::customers::partner_sees(partner, &customer.facts(), &active)
        }
        _ => false,
    };
    pc_domain::subscriptions::customer_to_sell_to(caller, customer_id, customer, partner_sees)
}
