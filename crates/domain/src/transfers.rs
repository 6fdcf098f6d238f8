//! Transfers (states, moves, lifecycle table, facts, rules), rule 11: the target partner asks the
//! source partner, the partner of record, to hand over subscriptions of a customer both work with;
//! only the source accepts or declines, the target may cancel, and an unanswered transfer expires
//! (rule 15). Accepting moves every listed subscription to the target, billed as the target's own
//! sale would be (rule 6), in one transaction or not at all. The source, the target, the customer
//! and operators see a transfer.

use chrono::{DateTime, Utc};

use crate::partners::Partner;
use crate::subscriptions::{self, Sale, Subscription};
use crate::{
    CustomerId, Error, Move, Parties, PartnerId, Principal, ProgramRole, Reason, Role, SalesChannel, Stamp,
    SubscriptionId, SubscriptionState, TransferId, rules,
};

crate::states::stored_enum!(
    /// Where a transfer stands.
    TransferState {
        Pending = "PENDING",
        Accepted = "ACCEPTED",
        Declined = "DECLINED",
        Cancelled = "CANCELLED",
        Expired = "EXPIRED",
    }
);

/// The moves of a transfer: the source accepts or declines, the target cancels, the expiry engine
/// expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMove {
    Accept,
    Decline,
    Cancel,
    Expire,
}

impl Move for TransferMove {
    const EXPIRE: Self = Self::Expire;

    fn method_verb(self) -> &'static str {
        match self {
            Self::Accept => "Accept",
            Self::Decline => "Decline",
            Self::Cancel => "Cancel",
            Self::Expire => "Expire",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Cancel => "cancel",
            Self::Expire => "expire",
        }
    }

    fn stamps(self) -> Stamp {
        match self {
            Self::Accept => Stamp::AcceptTime,
            Self::Decline | Self::Cancel | Self::Expire => Stamp::EndTime,
        }
    }
}

crate::states::lifecycle!(TransferState by TransferMove {
    Accept: Pending => Accepted,
    Decline: Pending => Declined,
    Cancel: Pending => Cancelled,
    Expire: Pending => Expired,
} live: Pending
expired: Expired);

/// The most subscriptions one transfer moves.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// A transfer as its rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub customer: CustomerId,
    pub source: PartnerId,
    pub target: PartnerId,
    /// The provider that bills the target's sales to the customer, for an indirect reseller target.
    pub indirect_provider: Option<PartnerId>,
    pub subscriptions: Vec<SubscriptionId>,
    pub state: TransferState,
    pub expire_time: DateTime<Utc>,
}

impl Transfer {
    /// Its customer, source and target: who sees it and its changes (rule 9).
    pub fn parties(&self) -> Parties {
        Parties::default()
            .with(Role::Customer, Some(self.customer))
            .with(Role::Source, Some(self.source))
            .with(Role::Target, Some(self.target))
    }

    /// The channel and billing partner a subscription has once it moved: the target's own sale
    /// (rule 6), a direct-bill target billing itself, a reseller's provider billing for it.
    pub fn terms(&self) -> (SalesChannel, PartnerId) {
        match self.indirect_provider {
            Some(provider) => (SalesChannel::ProgramIndirect, provider),
            None => (SalesChannel::ProgramDirectBill, self.target),
        }
    }
}

/// What creating and accepting a transfer decide on, read under the locks of `pc_store::locks`:
/// the target's side is a sale's (`Sale`: the target, the customer, its ACTIVE relationship, the
/// provider that would bill and their link), plus the source.
#[derive(Debug, Clone)]
pub struct Grounds {
    pub source: Partner,
    pub sale: Sale,
}

fn refused(message: String) -> Error {
    Error::rule(Reason::TransferNotAllowed, message)
}

/// Rule 11 on the two partners and the target's channel: they differ and share the customer's
/// cloud, and the target could sell the customer what it takes over (rule 6: an ACTIVE target with
/// an ACTIVE relationship, a reseller through the ACTIVE link with the provider its relationship
/// names). `named_provider` is the provider the transfer names, which must be that one. Returns
/// the subscriptions' new channel and billing partner.
pub fn parties_qualify(
    grounds: &Grounds,
    named_provider: Option<PartnerId>,
) -> Result<(SalesChannel, PartnerId), Error> {
    let Grounds { source, sale } = grounds;
    let (target, customer) = (&sale.partner, &sale.customer);
    if source.id == target.id {
        return Err(refused(format!("{} cannot transfer subscriptions to itself", target.id)));
    }
    rules::same_cloud((target.id, target.cloud), (source.id, source.cloud))?;
    if target.role == ProgramRole::IndirectProvider {
        // It holds no customer relationships to take subscriptions over with (rule 3).
        return Err(Error::rule(
            Reason::RoleNotAllowed,
            format!("{} is an indirect provider, which sells only through resellers", target.id),
        ));
    }
    let (channel, billing) = subscriptions::sell(sale)?;
    let billed_by = (channel == SalesChannel::ProgramIndirect).then_some(billing);
    if named_provider != billed_by {
        let expected = billed_by.map_or_else(|| "no indirect provider".to_owned(), |p| p.to_string());
        return Err(refused(format!(
            "{} sells to {} billed by {expected}; the transfer must name that",
            target.id, customer.id
        )));
    }
    Ok((channel, billing))
}

/// Rule 3 for AcceptTransfer: the source hands its subscriptions over only while ACTIVE (a
/// SUSPENDED partner accepts nothing), and the target takes them only while it could sell them.
pub fn accept(grounds: &Grounds, transfer: &Transfer) -> Result<(), Error> {
    rules::partner_active(&grounds.source)?;
    parties_qualify(grounds, transfer.indirect_provider)?;
    Ok(())
}

/// Rule 11: a subscription moves while it is an ACTIVE program subscription of the transfer's
/// customer with the source as partner of record. The refusal names the subscriptions that do not,
/// without saying why: the target may not read them (rule 9), so a missing, cancelled or someone
/// else's subscription all read alike.
pub fn subscriptions_qualify(
    customer: CustomerId,
    source: PartnerId,
    named: &[SubscriptionId],
    found: &[Subscription],
) -> Result<(), Error> {
    let qualifies = |id: &SubscriptionId| {
        found.iter().any(|s| {
            s.id == *id
                && s.customer == customer
                && s.partner_of_record == Some(source)
                && s.state == SubscriptionState::Active
        })
    };
    let failing: Vec<String> = named.iter().filter(|id| !qualifies(id)).map(ToString::to_string).collect();
    if failing.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "not an ACTIVE subscription of {customer} sold through the program by {source}: {}",
            failing.join(", ")
        )))
    }
}

/// Rule 11: no subscription is in two PENDING transfers. `pending` are the subscriptions of the
/// customer's other PENDING transfers that have not passed their deadline; the refusal names the
/// subscription, not the transfer, which the caller may not be party to.
pub fn not_in_another_transfer(named: &[SubscriptionId], pending: &[SubscriptionId]) -> Result<(), Error> {
    let taken: Vec<String> = named.iter().filter(|id| pending.contains(id)).map(ToString::to_string).collect();
    if taken.is_empty() {
        Ok(())
    } else {
        Err(Error::rule(Reason::SubscriptionInTransfer, format!("already in a PENDING transfer: {}", taken.join(", "))))
    }
}

/// The subscriptions a CreateTransfer names, validated: at least one, at most
/// [`MAX_SUBSCRIPTIONS`], none twice. `None` when it names none ("all the source's").
pub fn named_subscriptions(named: Vec<SubscriptionId>) -> Result<Option<Vec<SubscriptionId>>, Error> {
    let field = "transfer.subscriptions";
    if named.len() > MAX_SUBSCRIPTIONS {
        return Err(Error::invalid(field, format!("at most {MAX_SUBSCRIPTIONS} per transfer")));
    }
    let mut sorted = named.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != named.len() {
        return Err(Error::invalid(field, "names a subscription twice"));
    }
    Ok((!named.is_empty()).then_some(named))
}

/// Rule 9: its source, its target, its customer and operators see a transfer.
pub fn may_see(caller: &Principal, transfer: &Transfer) -> bool {
    match caller {
        Principal::Operator => true,
        Principal::Partner(me) => *me == transfer.source || *me == transfer.target,
        Principal::Customer(me) => *me == transfer.customer,
    }
}

/// Rule 5's "who" for transfers: the source accepts or declines, the target cancels, only the
/// expiry engine (acting as an operator) expires; operators may act for either side.
pub fn may_transition(caller: &Principal, transfer: &Transfer, transition: TransferMove) -> Result<(), Error> {
    let (allowed, who) = match (caller, transition) {
        (Principal::Operator, _) => (true, ""),
        (_, TransferMove::Expire) => (false, "the expiry engine"),
        (Principal::Partner(me), TransferMove::Accept | TransferMove::Decline) => {
            (*me == transfer.source, "the source partner or an operator")
        }
        (Principal::Partner(me), TransferMove::Cancel) => (*me == transfer.target, "the target partner or an operator"),
        (Principal::Customer(_), TransferMove::Accept | TransferMove::Decline) => {
            (false, "the source partner or an operator")
        }
        (Principal::Customer(_), TransferMove::Cancel) => (false, "the target partner or an operator"),
    };
    if allowed { Ok(()) } else { Err(Error::denied(format!("only {who} may {} {}", transition.verb(), transfer.id))) }
}

impl rules::Participants for Transfer {
    type Transition = TransferMove;

    fn may_see(&self, caller: &Principal) -> bool {
        may_see(caller, self)
    }

    fn may_transition(&self, caller: &Principal, transition: TransferMove) -> Result<(), Error> {
        may_transition(caller, self, transition)
    }

    fn parties(&self) -> Parties {
        Transfer::parties(self)
    }
}

/// Who a subscription's change records when a transfer moves it: who reads it now (its own parties
/// after the move, its support partner) and the partners that read it until now, so each sees the
/// change that ends its view (rule 14).
pub fn moved_parties(after: Parties, before: &Subscription) -> Parties {
    after.with(Role::Source, before.partner_of_record).with(Role::PreviousBillingPartner, before.billing_partner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer_relationships::CustomerRelationship;
    use crate::rules::test_support::*;
    use crate::{Cloud, CustomerRelationshipId, Lifecycle, RelationshipState};

    fn grounds(role: ProgramRole) -> Grounds {
        let target = partner(role);
        let customer = customer(Cloud::Global);
        let provider = (role == ProgramRole::IndirectReseller).then(|| partner(ProgramRole::IndirectProvider));
        let relationship = CustomerRelationship {
            id: CustomerRelationshipId::generate(),
            partner: target.id,
            customer: customer.id,
            indirect_provider: provider.map(|p| p.id),
            state: RelationshipState::Active,
        };
        Grounds {
            source: partner(ProgramRole::DirectBillPartner),
            sale: Sale { partner: target, customer, relationship: Some(relationship), provider, link_active: true },
        }
    }

    fn transfer(grounds: &Grounds) -> Transfer {
        Transfer {
            id: TransferId::generate(),
            customer: grounds.sale.customer.id,
            source: grounds.source.id,
            target: grounds.sale.partner.id,
            indirect_provider: grounds.sale.provider.map(|p| p.id),
            subscriptions: vec![SubscriptionId::generate()],
            state: TransferState::Pending,
            expire_time: Utc::now() + chrono::Duration::days(30),
        }
    }

    fn subscription(transfer: &Transfer, id: SubscriptionId) -> Subscription {
        Subscription {
            id,
            customer: transfer.customer,
            partner_of_record: Some(transfer.source),
            billing_partner: Some(transfer.source),
            quantity: 5,
            state: SubscriptionState::Active,
        }
    }

    #[test]
    fn the_target_takes_over_as_its_own_sale_would_be_billed() {
        let direct = grounds(ProgramRole::DirectBillPartner);
        assert_eq!(
            parties_qualify(&direct, None).ok(),
            Some((SalesChannel::ProgramDirectBill, direct.sale.partner.id))
        );
        let reseller = grounds(ProgramRole::IndirectReseller);
        let provider = reseller.sale.provider.map(|p| p.id);
        let terms = parties_qualify(&reseller, provider).ok();
        assert_eq!(terms.map(|(c, b)| (c, Some(b))), Some((SalesChannel::ProgramIndirect, provider)));
        assert_eq!(transfer(&reseller).terms().1, provider.unwrap_or(reseller.sale.partner.id));
        assert_eq!(reason(parties_qualify(&reseller, None)), "TRANSFER_NOT_ALLOWED");
        assert_eq!(reason(parties_qualify(&reseller, Some(PartnerId::generate()))), "TRANSFER_NOT_ALLOWED");
        assert_eq!(reason(parties_qualify(&grounds(ProgramRole::IndirectProvider), None)), "ROLE_NOT_ALLOWED");
    }

    #[test]
    fn the_parties_differ_share_a_cloud_and_the_target_works_with_the_customer() {
        let mut to_itself = grounds(ProgramRole::DirectBillPartner);
        to_itself.source = to_itself.sale.partner;
        assert_eq!(reason(parties_qualify(&to_itself, None)), "TRANSFER_NOT_ALLOWED");
        let mut abroad = grounds(ProgramRole::DirectBillPartner);
        abroad.source = in_cloud(abroad.source, Cloud::China);
        assert_eq!(reason(parties_qualify(&abroad, None)), "CROSS_CLOUD");
        let mut strangers = grounds(ProgramRole::DirectBillPartner);
        strangers.sale.relationship = None;
        assert_eq!(reason(parties_qualify(&strangers, None)), "NO_ACTIVE_RELATIONSHIP");
        let mut distributor = grounds(ProgramRole::IndirectProvider);
        distributor.sale.relationship = None;
        assert_eq!(reason(parties_qualify(&distributor, None)), "ROLE_NOT_ALLOWED");
        let mut unlinked = grounds(ProgramRole::IndirectReseller);
        unlinked.sale.link_active = false;
        let provider = unlinked.sale.provider.map(|p| p.id);
        assert_eq!(reason(parties_qualify(&unlinked, provider)), "NO_ACTIVE_RESELLER_LINK");
        let mut stopped = grounds(ProgramRole::DirectBillPartner);
        let pending = transfer(&stopped);
        stopped.source = suspended(stopped.source);
        assert!(parties_qualify(&stopped, None).is_ok(), "a suspended source may be asked");
        assert_eq!(reason(accept(&stopped, &pending)), "PARTNER_SUSPENDED");
        let mut taking = grounds(ProgramRole::DirectBillPartner);
        taking.sale.partner = suspended(taking.sale.partner);
        assert_eq!(reason(parties_qualify(&taking, None)), "PARTNER_SUSPENDED");
    }

    #[test]
    fn only_the_sources_active_program_subscriptions_of_the_customer_move() {
        let transfer = transfer(&grounds(ProgramRole::DirectBillPartner));
        let id = transfer.subscriptions[0];
        let good = subscription(&transfer, id);
        let check = |found: Subscription| subscriptions_qualify(transfer.customer, transfer.source, &[id], &[found]);
        assert!(check(good).is_ok());
        assert_eq!(reason(check(Subscription { state: SubscriptionState::Cancelled, ..good })), "TRANSFER_NOT_ALLOWED");
        assert_eq!(reason(check(Subscription { partner_of_record: None, ..good })), "TRANSFER_NOT_ALLOWED");
        assert_eq!(reason(check(Subscription { customer: CustomerId::generate(), ..good })), "TRANSFER_NOT_ALLOWED");
        let missing = subscriptions_qualify(transfer.customer, transfer.source, &[id], &[]);
        let cancelled = check(Subscription { state: SubscriptionState::Cancelled, ..good });
        assert_eq!(missing.err().map(|e| e.to_string()), cancelled.err().map(|e| e.to_string()));
        assert_eq!(reason(not_in_another_transfer(&[id], &[id])), "SUBSCRIPTION_IN_TRANSFER");
        assert!(not_in_another_transfer(&[id], &[SubscriptionId::generate()]).is_ok());
        assert!(named_subscriptions(vec![id, id]).is_err());
        assert!(named_subscriptions((0..=MAX_SUBSCRIPTIONS).map(|_| SubscriptionId::generate()).collect()).is_err());
        assert_eq!(named_subscriptions(Vec::new()).ok(), Some(None));
    }

    #[test]
    fn the_source_answers_and_the_target_cancels() {
        let transfer = transfer(&grounds(ProgramRole::DirectBillPartner));
        let (source, target) = (Principal::Partner(transfer.source), Principal::Partner(transfer.target));
        let customer = Principal::Customer(transfer.customer);
        assert!(may_transition(&source, &transfer, TransferMove::Accept).is_ok());
        assert!(may_transition(&target, &transfer, TransferMove::Accept).is_err());
        assert!(may_transition(&customer, &transfer, TransferMove::Decline).is_err());
        assert!(may_transition(&target, &transfer, TransferMove::Cancel).is_ok());
        assert!(may_transition(&source, &transfer, TransferMove::Cancel).is_err());
        assert!(may_transition(&source, &transfer, TransferMove::Expire).is_err());
        assert!(may_see(&customer, &transfer) && may_see(&source, &transfer) && may_see(&target, &transfer));
        assert!(!may_see(&Principal::Partner(PartnerId::generate()), &transfer));
        assert_eq!(TransferState::Pending.after(TransferMove::Cancel), Some(TransferState::Cancelled));
        assert_eq!(TransferState::Accepted.after(TransferMove::Expire), None);
    }
}
