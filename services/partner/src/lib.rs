//! `partnercenter.partner.v1.PartnerService`: the program's directory of partners and customers.
//!
//! [`partners`] and [`customers`] hold one handler per RPC, each reading as: validate the request
//! into domain values, authorize the caller, run one transaction (the rules of
//! its `pc_domain` module, the write and its change), map the row to proto. This module only wires
//! them to tonic.

pub mod customers;
pub mod partners;

use pc_api::partner::v1::{
    CreateCustomerRequest, CreatePartnerRequest, Customer, GetCustomerRequest, GetPartnerRequest, ListCustomersRequest,
    ListCustomersResponse, ListPartnersRequest, ListPartnersResponse, Partner, ReactivatePartnerRequest,
    SuspendPartnerRequest, UpdatePartnerRequest,
    partner_service_server::{PartnerService, PartnerServiceServer},
};

pc_server::grpc_service! {
    /// The PartnerService implementation over one database.
    PartnerApi serves PartnerService through PartnerServiceServer;
    rpc create_partner(CreatePartnerRequest) -> Partner = retried partners::create_partner;
    rpc get_partner(GetPartnerRequest) -> Partner = once partners::get_partner;
    rpc list_partners(ListPartnersRequest) -> ListPartnersResponse = list partners::list_partners;
    rpc update_partner(UpdatePartnerRequest) -> Partner = retried partners::update_partner;
    rpc suspend_partner(SuspendPartnerRequest) -> Partner = retried partners::suspend_partner;
    rpc reactivate_partner(ReactivatePartnerRequest) -> Partner = retried partners::reactivate_partner;
    rpc create_customer(CreateCustomerRequest) -> Customer = retried customers::create_customer;
    rpc get_customer(GetCustomerRequest) -> Customer = once customers::get_customer;
    rpc list_customers(ListCustomersRequest) -> ListCustomersResponse = list customers::list_customers;
}
