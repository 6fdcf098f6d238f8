//! `partnercenter.relationship.v1.RelationshipService`: who works with whom.
//!
//! [`reseller_links`] holds the two-tier model (provider invites, reseller accepts) and
//! [`customer_relationships`] the partner-customer relationships (multi-partner). Each handler
//! reads as: validate, authorize, one transaction (rules, write, audit), map to proto. This module
//! only wires them to tonic.

pub mod customer_relationships;
pub mod reseller_links;

use pc_api::relationship::v1::{
    AcceptCustomerRelationshipRequest, AcceptResellerLinkRequest, CustomerRelationship,
    DeclineCustomerRelationshipRequest, DeclineResellerLinkRequest, EndCustomerRelationshipRequest,
    EndResellerLinkRequest, GetCustomerRelationshipRequest, GetResellerLinkRequest, InviteResellerRequest,
    ListCustomerRelationshipsRequest, ListCustomerRelationshipsResponse, ListResellerLinksRequest,
    ListResellerLinksResponse, RequestCustomerRelationshipRequest, ResellerLink,
    relationship_service_server::{RelationshipService, RelationshipServiceServer},
};
use pc_domain::PageKey;
use pc_server::{ServiceRoutes, Shared, principal_of, respond};
use pc_store::retry::with_retries;
use pc_store::{Database, lifecycle::Transition};
use tonic::{Request, Response, Status, server::NamedService};

/// The RelationshipService implementation over one database.
#[derive(Debug, Clone)]
pub struct RelationshipApi {
    db: Database,
    pages: PageKey,
}

/// Adds RelationshipService, behind the shared authenticator, to the routes a server will serve.
pub fn register(services: &mut ServiceRoutes, shared: Shared) {
    let api = RelationshipApi { db: shared.db, pages: shared.pages };
    services.routes.add_service(RelationshipServiceServer::with_interceptor(api, shared.auth));
    services.names.push(<RelationshipServiceServer<RelationshipApi> as NamedService>::NAME);
}

#[tonic::async_trait]
impl RelationshipService for RelationshipApi {
    async fn invite_reseller(&self, request: Request<InviteResellerRequest>) -> Result<Response<ResellerLink>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| reseller_links::invite_reseller(&self.db, caller, request.clone())).await)
    }

    async fn accept_reseller_link(
        &self,
        request: Request<AcceptResellerLinkRequest>,
    ) -> Result<Response<ResellerLink>, Status> {
        let caller = principal_of(&request)?;
        let AcceptResellerLinkRequest { name, etag } = request.into_inner();
        respond(with_retries(|| reseller_links::transition(&self.db, caller, Transition::Accept, &name, &etag)).await)
    }

    async fn decline_reseller_link(
        &self,
        request: Request<DeclineResellerLinkRequest>,
    ) -> Result<Response<ResellerLink>, Status> {
        let caller = principal_of(&request)?;
        let DeclineResellerLinkRequest { name, etag } = request.into_inner();
        respond(with_retries(|| reseller_links::transition(&self.db, caller, Transition::Decline, &name, &etag)).await)
    }

    async fn end_reseller_link(
        &self,
        request: Request<EndResellerLinkRequest>,
    ) -> Result<Response<ResellerLink>, Status> {
        let caller = principal_of(&request)?;
        let EndResellerLinkRequest { name, etag } = request.into_inner();
        respond(with_retries(|| reseller_links::transition(&self.db, caller, Transition::End, &name, &etag)).await)
    }

    async fn get_reseller_link(
        &self,
        request: Request<GetResellerLinkRequest>,
    ) -> Result<Response<ResellerLink>, Status> {
        let caller = principal_of(&request)?;
        respond(reseller_links::get_reseller_link(&self.db, caller, &request.into_inner().name).await)
    }

    async fn list_reseller_links(
        &self,
        request: Request<ListResellerLinksRequest>,
    ) -> Result<Response<ListResellerLinksResponse>, Status> {
        let caller = principal_of(&request)?;
        respond(reseller_links::list_reseller_links(&self.db, &self.pages, caller, request.into_inner()).await)
    }

    async fn request_customer_relationship(
        &self,
        request: Request<RequestCustomerRelationshipRequest>,
    ) -> Result<Response<CustomerRelationship>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(
            with_retries(|| customer_relationships::request_customer_relationship(&self.db, caller, request.clone()))
                .await,
        )
    }

    async fn accept_customer_relationship(
        &self,
        request: Request<AcceptCustomerRelationshipRequest>,
    ) -> Result<Response<CustomerRelationship>, Status> {
        let caller = principal_of(&request)?;
        let AcceptCustomerRelationshipRequest { name, etag } = request.into_inner();
        respond(
            with_retries(|| customer_relationships::transition(&self.db, caller, Transition::Accept, &name, &etag))
                .await,
        )
    }

    async fn decline_customer_relationship(
        &self,
        request: Request<DeclineCustomerRelationshipRequest>,
    ) -> Result<Response<CustomerRelationship>, Status> {
        let caller = principal_of(&request)?;
        let DeclineCustomerRelationshipRequest { name, etag } = request.into_inner();
        respond(
            with_retries(|| customer_relationships::transition(&self.db, caller, Transition::Decline, &name, &etag))
                .await,
        )
    }

    async fn end_customer_relationship(
        &self,
        request: Request<EndCustomerRelationshipRequest>,
    ) -> Result<Response<CustomerRelationship>, Status> {
        let caller = principal_of(&request)?;
        let EndCustomerRelationshipRequest { name, etag } = request.into_inner();
        respond(
            with_retries(|| customer_relationships::transition(&self.db, caller, Transition::End, &name, &etag)).await,
        )
    }

    async fn get_customer_relationship(
        &self,
        request: Request<GetCustomerRelationshipRequest>,
    ) -> Result<Response<CustomerRelationship>, Status> {
        let caller = principal_of(&request)?;
        let name = request.into_inner().name;
        respond(customer_relationships::get_customer_relationship(&self.db, caller, &name).await)
    }

    async fn list_customer_relationships(
        &self,
        request: Request<ListCustomerRelationshipsRequest>,
    ) -> Result<Response<ListCustomerRelationshipsResponse>, Status> {
        let caller = principal_of(&request)?;
        respond(
            customer_relationships::list_customer_relationships(&self.db, &self.pages, caller, request.into_inner())
                .await,
        )
    }
}
