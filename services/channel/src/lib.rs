//! `partnercenter.channel.v1.ChannelService`: what customers hold and who supports it.
//!
//! [`subscriptions`] covers program sales (multi-partner) and subscriptions bought elsewhere;
//! [`support_assignments`] covers partners hired to support what they did not sell
//! (multi-channel); [`transfers`] covers subscriptions moving from one partner to another. Each handler reads as: validate, authorize, one transaction (the rules of
//! its `pc_domain` module, the write and its change), map to proto; Accept, Decline and End are the
//! one lifecycle (`pc_server::lifecycle::run`). This module only wires them to tonic.

pub mod subscriptions;
pub mod support_assignments;
pub mod transfers;

use pc_api::channel::v1::{
    AcceptSupportAssignmentRequest, AcceptTransferRequest, CancelSubscriptionRequest, CancelTransferRequest,
    CreateSubscriptionRequest, CreateTransferRequest, DeclineSupportAssignmentRequest, DeclineTransferRequest,
    EndSupportAssignmentRequest, GetSubscriptionRequest, GetSupportAssignmentRequest, GetTransferRequest,
    ListSubscriptionsRequest, ListSubscriptionsResponse, ListSupportAssignmentsRequest, ListSupportAssignmentsResponse,
    ListTransfersRequest, ListTransfersResponse, RegisterExternalSubscriptionRequest, RequestSupportRequest,
    Subscription, SupportAssignment, Transfer, UpdateSubscriptionRequest,
    channel_service_server::{ChannelService, ChannelServiceServer},
};
use pc_domain::TransferMove;
use pc_server::lifecycle::Transition;
use support_assignments::SupportAssignments;
use transfers::Transfers;

pc_server::grpc_service! {
    /// The ChannelService implementation over one database.
    ChannelApi serves ChannelService through ChannelServiceServer;
    rpc create_subscription(CreateSubscriptionRequest) -> Subscription = retried subscriptions::create_subscription;
    rpc register_external_subscription(RegisterExternalSubscriptionRequest) -> Subscription =
        retried subscriptions::register_external_subscription;
    rpc get_subscription(GetSubscriptionRequest) -> Subscription = once subscriptions::get_subscription;
    rpc list_subscriptions(ListSubscriptionsRequest) -> ListSubscriptionsResponse =
        list subscriptions::list_subscriptions;
    rpc update_subscription(UpdateSubscriptionRequest) -> Subscription = retried subscriptions::update_subscription;
    rpc cancel_subscription(CancelSubscriptionRequest) -> Subscription = retried subscriptions::cancel_subscription;
    rpc request_support(RequestSupportRequest) -> SupportAssignment = retried support_assignments::request_support;
    rpc get_support_assignment(GetSupportAssignmentRequest) -> SupportAssignment =
        once support_assignments::get_support_assignment;
    rpc list_support_assignments(ListSupportAssignmentsRequest) -> ListSupportAssignmentsResponse =
        list support_assignments::list_support_assignments;
    rpc create_transfer(CreateTransferRequest) -> Transfer = retried transfers::create_transfer;
    rpc get_transfer(GetTransferRequest) -> Transfer = once transfers::get_transfer;
    rpc list_transfers(ListTransfersRequest) -> ListTransfersResponse = list transfers::list_transfers;
    lifecycle SupportAssignments => support_assignments::to_proto, SupportAssignment {
        accept_support_assignment(AcceptSupportAssignmentRequest) = Transition::Accept,
        decline_support_assignment(DeclineSupportAssignmentRequest) = Transition::Decline,
        end_support_assignment(EndSupportAssignmentRequest) = Transition::End,
    }
    lifecycle Transfers => transfers::to_proto, Transfer {
        accept_transfer(AcceptTransferRequest) = TransferMove::Accept,
        decline_transfer(DeclineTransferRequest) = TransferMove::Decline,
        cancel_transfer(CancelTransferRequest) = TransferMove::Cancel,
    }
}
