//! `partnercenter.partner.v1.PartnerService`: the program's directory of partners and customers.
//!
//! [`partners`] and [`customers`] hold one handler per RPC, each reading as: validate the request
//! into domain values, authorize the caller, run one transaction (rule checks, the write, its
//! audit event), map the row to proto. This module only wires them to tonic.

pub mod customers;
pub mod partners;

use pc_api::partner::v1::{
    CreateCustomerRequest, CreatePartnerRequest, Customer, GetCustomerRequest, GetPartnerRequest, ListCustomersRequest,
    ListCustomersResponse, ListPartnersRequest, ListPartnersResponse, Partner, ReactivatePartnerRequest,
    SuspendPartnerRequest, UpdatePartnerRequest,
    partner_service_server::{PartnerService, PartnerServiceServer},
};
use pc_domain::PageKey;
use pc_server::{ServiceRoutes, Shared, principal_of, respond};
use pc_store::Database;
use pc_store::retry::with_retries;
use tonic::{Request, Response, Status, server::NamedService};

/// The PartnerService implementation over one database.
#[derive(Debug, Clone)]
pub struct PartnerApi {
    db: Database,
    pages: PageKey,
}

/// Adds PartnerService, behind the shared authenticator, to the routes a server will serve.
pub fn register(services: &mut ServiceRoutes, shared: Shared) {
    let api = PartnerApi { db: shared.db, pages: shared.pages };
    services.routes.add_service(PartnerServiceServer::with_interceptor(api, shared.auth));
    services.names.push(<PartnerServiceServer<PartnerApi> as NamedService>::NAME);
}

#[tonic::async_trait]
impl PartnerService for PartnerApi {
    async fn create_partner(&self, request: Request<CreatePartnerRequest>) -> Result<Response<Partner>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| partners::create_partner(&self.db, caller, request.clone())).await)
    }

    async fn get_partner(&self, request: Request<GetPartnerRequest>) -> Result<Response<Partner>, Status> {
        let caller = principal_of(&request)?;
        respond(partners::get_partner(&self.db, caller, request.into_inner()).await)
    }

    async fn list_partners(
        &self,
        request: Request<ListPartnersRequest>,
    ) -> Result<Response<ListPartnersResponse>, Status> {
        let caller = principal_of(&request)?;
        respond(partners::list_partners(&self.db, &self.pages, caller, request.into_inner()).await)
    }

    async fn update_partner(&self, request: Request<UpdatePartnerRequest>) -> Result<Response<Partner>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| partners::update_partner(&self.db, caller, request.clone())).await)
    }

    async fn suspend_partner(&self, request: Request<SuspendPartnerRequest>) -> Result<Response<Partner>, Status> {
        let caller = principal_of(&request)?;
        let SuspendPartnerRequest { name, etag } = request.into_inner();
        respond(
            with_retries(|| {
                partners::change_state(&self.db, caller, pc_domain::rules::partners::StateChange::Suspend, &name, &etag)
            })
            .await,
        )
    }

    async fn reactivate_partner(
        &self,
        request: Request<ReactivatePartnerRequest>,
    ) -> Result<Response<Partner>, Status> {
        let caller = principal_of(&request)?;
        let ReactivatePartnerRequest { name, etag } = request.into_inner();
        respond(
            with_retries(|| {
                partners::change_state(
                    &self.db,
                    caller,
                    pc_domain::rules::partners::StateChange::Reactivate,
                    &name,
                    &etag,
                )
            })
            .await,
        )
    }

    async fn create_customer(&self, request: Request<CreateCustomerRequest>) -> Result<Response<Customer>, Status> {
        let caller = principal_of(&request)?;
        let request = request.into_inner();
        respond(with_retries(|| customers::create_customer(&self.db, caller, request.clone())).await)
    }

    async fn get_customer(&self, request: Request<GetCustomerRequest>) -> Result<Response<Customer>, Status> {
        let caller = principal_of(&request)?;
        respond(customers::get_customer(&self.db, caller, request.into_inner()).await)
    }

    async fn list_customers(
        &self,
        request: Request<ListCustomersRequest>,
    ) -> Result<Response<ListCustomersResponse>, Status> {
        let caller = principal_of(&request)?;
        respond(customers::list_customers(&self.db, &self.pages, caller, request.into_inner()).await)
    }
}
