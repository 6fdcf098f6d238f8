//! `partnercenter.channel.v1.ChannelService`: what customers hold and who supports it.
//!
//! [`subscriptions`] covers program sales (multi-partner) and subscriptions bought elsewhere;
//! [`support_assignments`] covers partners hired to support what they did not sell
//! (multi-channel). Each handler reads as: validate, authorize, one transaction (rules, write,
//! audit), map to proto. This module only wires them to tonic.

pub mod subscriptions;
pub mod support_assignments;

use pc_api::channel::v1::{
    AcceptSupportAssignmentRequest, CancelSubscriptionRequest, CreateSubscriptionRequest,
    DeclineSupportAssignmentRequest, EndSupportAssignmentRequest, GetSubscriptionRequest, GetSupportAssignmentRequest,
    ListSubscriptionsRequest, ListSubscriptionsResponse, ListSupportAssignmentsRequest, ListSupportAssignmentsResponse,
    RegisterExternalSubscriptionRequest, RequestSupportRequest, Subscription, SupportAssignment,
    UpdateSubscriptionRequest,
    channel_service_server::{ChannelService, ChannelServiceServer},
};
use pc_domain::PageKey;
use pc_server::{ServiceRoutes, Shared, principal_of, respond};
use pc_store::retry::with_retries;
use pc_store::{Database, lifecycle::Transition};
use tonic::{Request, Response, Status, server::NamedService};

/// The ChannelService implementation over one database.
#[derive(Debug, Clone)]
pub struct ChannelApi {
    db: Database,
    pages: PageKey,
}

/// Adds ChannelService, behind the shared authenticator, to the routes a server will serve.
pub fn register(services: &mut ServiceRoutes, shared: Shared) {
    let api = ChannelApi { db: shared.db, pages: shared.pages };
    services.routes.add_service(ChannelServiceServer::with_interceptor(api, shared.auth));
    services.names.push(<ChannelServiceServer<ChannelApi> as NamedService>::NAME);
}

#[tonic::async_trait]
impl ChannelService for ChannelApi {
    async fn create_subscription(
        &self,
        request: Request<CreateSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| subscriptions::create_subscription(&self.db, caller, request.clone())).await)
    }

    async fn register_external_subscription(
        &self,
        request: Request<RegisterExternalSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| subscriptions::register_external_subscription(&self.db, caller, request.clone())).await)
    }

    async fn get_subscription(
        &self,
        request: Request<GetSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let caller = principal_of(&request)?;
        respond(subscriptions::get_subscription(&self.db, caller, &request.into_inner().name).await)
    }

    async fn list_subscriptions(
        &self,
        request: Request<ListSubscriptionsRequest>,
    ) -> Result<Response<ListSubscriptionsResponse>, Status> {
        let caller = principal_of(&request)?;
        respond(subscriptions::list_subscriptions(&self.db, &self.pages, caller, request.into_inner()).await)
    }

    async fn update_subscription(
        &self,
        request: Request<UpdateSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| subscriptions::update_subscription(&self.db, caller, request.clone())).await)
    }

    async fn cancel_subscription(
        &self,
        request: Request<CancelSubscriptionRequest>,
    ) -> Result<Response<Subscription>, Status> {
        let caller = principal_of(&request)?;
        let CancelSubscriptionRequest { name, etag } = request.into_inner();
        respond(with_retries(|| subscriptions::cancel_subscription(&self.db, caller, &name, &etag)).await)
    }

    async fn request_support(
        &self,
        request: Request<RequestSupportRequest>,
    ) -> Result<Response<SupportAssignment>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| support_assignments::request_support(&self.db, caller, request.clone())).await)
    }

    async fn accept_support_assignment(
        &self,
        request: Request<AcceptSupportAssignmentRequest>,
    ) -> Result<Response<SupportAssignment>, Status> {
        let caller = principal_of(&request)?;
        let AcceptSupportAssignmentRequest { name, etag } = request.into_inner();
        respond(
            with_retries(|| support_assignments::transition(&self.db, caller, Transition::Accept, &name, &etag)).await,
        )
    }

    async fn decline_support_assignment(
        &self,
        request: Request<DeclineSupportAssignmentRequest>,
    ) -> Result<Response<SupportAssignment>, Status> {
        let caller = principal_of(&request)?;
        let DeclineSupportAssignmentRequest { name, etag } = request.into_inner();
        respond(
            with_retries(|| support_assignments::transition(&self.db, caller, Transition::Decline, &name, &etag)).await,
        )
    }

    async fn end_support_assignment(
        &self,
        request: Request<EndSupportAssignmentRequest>,
    ) -> Result<Response<SupportAssignment>, Status> {
        let caller = principal_of(&request)?;
        let EndSupportAssignmentRequest { name, etag } = request.into_inner();
        respond(with_retries(|| support_assignments::transition(&self.db, caller, Transition::End, &name, &etag)).await)
    }

    async fn get_support_assignment(
        &self,
        request: Request<GetSupportAssignmentRequest>,
    ) -> Result<Response<SupportAssignment>, Status> {
        let caller = principal_of(&request)?;
        let name = request.into_inner().name;
        respond(support_assignments::get_support_assignment(&self.db, caller, &name).await)
    }

    async fn list_support_assignments(
        &self,
        request: Request<ListSupportAssignmentsRequest>,
    ) -> Result<Response<ListSupportAssignmentsResponse>, Status> {
        let caller = principal_of(&request)?;
        respond(
            support_assignments::list_support_assignments(&self.db, &self.pages, caller, request.into_inner()).await,
        )
    }
}
