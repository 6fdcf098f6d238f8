//! `partnercenter.relationship.v1.RelationshipService`: who works with whom.
//!
//! [`reseller_links`] holds the two-tier model (provider invites, reseller accepts),
//! [`customer_relationships`] the partner-customer relationships (multi-partner) and
//! [`admin_relationships`] the time-boxed admin roles a customer grants a partner. Each handler
//! reads as: validate, authorize, one transaction (the rules of its `pc_domain` module, the write,
//! its change), map to proto; Accept, Decline and End are the one lifecycle
//! (`pc_server::lifecycle::run`) with each resource's rules. This module only wires them to tonic.

pub mod access;
pub mod admin_relationships;
pub mod customer_relationships;
pub mod reseller_links;

use admin_relationships::AdminRelationships;
use customer_relationships::CustomerRelationships;
use pc_api::relationship::v1::{
    AcceptCustomerRelationshipRequest, AcceptResellerLinkRequest, AdminRelationship, ApproveAdminRelationshipRequest,
    CheckAccessRequest, CheckAccessResponse, CustomerRelationship, DeclineAdminRelationshipRequest,
    DeclineCustomerRelationshipRequest, DeclineResellerLinkRequest, EndCustomerRelationshipRequest,
    EndResellerLinkRequest, GetAdminRelationshipRequest, GetCustomerRelationshipRequest, GetResellerLinkRequest,
    InviteResellerRequest, ListAdminRelationshipsRequest, ListAdminRelationshipsResponse,
    ListCustomerRelationshipsRequest, ListCustomerRelationshipsResponse, ListResellerLinksRequest,
    ListResellerLinksResponse, RequestAdminRelationshipRequest, RequestCustomerRelationshipRequest, ResellerLink,
    TerminateAdminRelationshipRequest,
    relationship_service_server::{RelationshipService, RelationshipServiceServer},
};
use pc_domain::AdminMove;
use pc_server::lifecycle::Transition;
use reseller_links::ResellerLinks;

pc_server::grpc_service! {
    /// The RelationshipService implementation over one database.
    RelationshipApi serves RelationshipService through RelationshipServiceServer;
    rpc invite_reseller(InviteResellerRequest) -> ResellerLink = retried reseller_links::invite_reseller;
    rpc get_reseller_link(GetResellerLinkRequest) -> ResellerLink = once reseller_links::get_reseller_link;
    rpc list_reseller_links(ListResellerLinksRequest) -> ListResellerLinksResponse =
        list reseller_links::list_reseller_links;
    rpc request_customer_relationship(RequestCustomerRelationshipRequest) -> CustomerRelationship =
        retried customer_relationships::request_customer_relationship;
    rpc get_customer_relationship(GetCustomerRelationshipRequest) -> CustomerRelationship =
        once customer_relationships::get_customer_relationship;
    rpc list_customer_relationships(ListCustomerRelationshipsRequest) -> ListCustomerRelationshipsResponse =
        list customer_relationships::list_customer_relationships;
    rpc request_admin_relationship(RequestAdminRelationshipRequest) -> AdminRelationship =
        retried admin_relationships::request_admin_relationship;
    rpc get_admin_relationship(GetAdminRelationshipRequest) -> AdminRelationship =
        once admin_relationships::get_admin_relationship;
    rpc list_admin_relationships(ListAdminRelationshipsRequest) -> ListAdminRelationshipsResponse =
        list admin_relationships::list_admin_relationships;
    rpc check_access(CheckAccessRequest) -> CheckAccessResponse = once access::check_access;
    lifecycle ResellerLinks => reseller_links::to_proto, ResellerLink {
        accept_reseller_link(AcceptResellerLinkRequest) = Transition::Accept,
        decline_reseller_link(DeclineResellerLinkRequest) = Transition::Decline,
        end_reseller_link(EndResellerLinkRequest) = Transition::End,
    }
    lifecycle CustomerRelationships => customer_relationships::to_proto, CustomerRelationship {
        accept_customer_relationship(AcceptCustomerRelationshipRequest) = Transition::Accept,
        decline_customer_relationship(DeclineCustomerRelationshipRequest) = Transition::Decline,
        end_customer_relationship(EndCustomerRelationshipRequest) = Transition::End,
    }
    lifecycle AdminRelationships => admin_relationships::to_proto, AdminRelationship {
        approve_admin_relationship(ApproveAdminRelationshipRequest) = AdminMove::Approve,
        decline_admin_relationship(DeclineAdminRelationshipRequest) = AdminMove::Decline,
        terminate_admin_relationship(TerminateAdminRelationshipRequest) = AdminMove::Terminate,
    }
}
