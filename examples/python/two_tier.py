"""The two-tier flow from Python, as a service in another language calls partner-center.

An operator enrols an indirect provider and an indirect reseller, the provider invites the
reseller, the reseller accepts, the reseller creates a customer and asks it for a relationship
billed through the provider, and the customer accepts. Then a second invitation for the same pair
is refused, and the example reads the refusal's google.rpc.ErrorInfo: a client switches on its
reason (README, Error reasons), never on the message.

The message classes come from the stubs buf.gen.yaml generates (put their directory on
PYTHONPATH); each call goes through grpcio by the method's path, with the request and response
types read from the generated descriptors, so no gRPC plugin is needed.

    pip install -r examples/python/requirements.txt
    buf generate --template buf.gen.yaml -o /tmp/stubs     # see buf.gen.yaml for the TypeScript plugin
    AUTH_JWT_SECRET=... PYTHONPATH=/tmp/stubs/python python3 examples/python/two_tier.py 127.0.0.1:50050

Tokens: the dev server verifies HS256 tokens signed with its AUTH_JWT_SECRET, which this example
mints itself; a deployment with an identity provider hands out tokens instead.
"""

import os
import sys
import time
import uuid

import grpc
import jwt
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from partnercenter.partner.v1 import partner_pb2, partner_service_pb2
from partnercenter.relationship.v1 import relationship_pb2, relationship_service_pb2
from partnercenter.type.v1 import cloud_pb2


class Service:
    """Calls one service's methods by name (``service.CreatePartner(request, token)``)."""

    def __init__(self, channel, file_descriptor, name):
        self._calls = {}
        for method in file_descriptor.services_by_name[name].methods:
            request = message_factory.GetMessageClass(method.input_type)
            response = message_factory.GetMessageClass(method.output_type)
            self._calls[method.name] = channel.unary_unary(
                f"/{method.containing_service.full_name}/{method.name}",
                request_serializer=request.SerializeToString,
                response_deserializer=response.FromString,
            )

    def __getattr__(self, method):
        call = self._calls[method]
        return lambda request, token: call(
            request, metadata=[("authorization", f"Bearer {token}")], timeout=10
        )


def token(secret, subject):
    """A token for `subject` that the dev server accepts for ten minutes."""
    now = int(time.time())
    return jwt.encode({"sub": subject, "iat": now, "exp": now + 600}, secret, algorithm="HS256")


def error_info(error):
    """The google.rpc.ErrorInfo of a failed call, or None."""
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def main(address, secret):
    channel = grpc.insecure_channel(address)
    partners = Service(channel, partner_service_pb2.DESCRIPTOR, "PartnerService")
    relationships = Service(channel, relationship_service_pb2.DESCRIPTOR, "RelationshipService")
    operator = token(secret, "operator")

    def enrol(name, role):
        partner = partner_pb2.Partner(
            display_name=name,
            tenant_id=str(uuid.uuid4()),
            country_code="US",
            cloud=cloud_pb2.CLOUD_GLOBAL,
            program_role=role,
        )
        # A request_id makes the create safe to retry: a retry gets the first answer.
        request = partner_service_pb2.CreatePartnerRequest(partner=partner, request_id=str(uuid.uuid4()))
        return partners.CreatePartner(request, operator)

    provider = enrol("Fabrikam Distribution", partner_pb2.PROGRAM_ROLE_INDIRECT_PROVIDER)
    reseller = enrol("Northwind Resale", partner_pb2.PROGRAM_ROLE_INDIRECT_RESELLER)
    as_provider, as_reseller = token(secret, provider.name), token(secret, reseller.name)

    invitation = relationship_service_pb2.InviteResellerRequest(provider=provider.name, reseller=reseller.name)
    link = relationships.InviteReseller(invitation, as_provider)
    link = relationships.AcceptResellerLink(
        relationship_service_pb2.AcceptResellerLinkRequest(name=link.name, etag=link.etag), as_reseller
    )
    assert link.state == relationship_pb2.ResellerLink.STATE_ACTIVE, link
    print(f"{link.name} is ACTIVE: {reseller.name} sells through {provider.name}")

    tag = uuid.uuid4().hex[:12]
    customer = partners.CreateCustomer(
        partner_service_pb2.CreateCustomerRequest(
            customer=partner_pb2.Customer(
                display_name="Contoso",
                tenant_id=str(uuid.uuid4()),
                primary_domain=f"contoso-{tag}.example.com",
                country_code="DE",
                cloud=cloud_pb2.CLOUD_GLOBAL,
            )
        ),
        as_reseller,
    )
    asked = relationships.RequestCustomerRelationship(
        relationship_service_pb2.RequestCustomerRelationshipRequest(
            partner=reseller.name, customer=customer.name, indirect_provider=provider.name
        ),
        as_reseller,
    )
    accepted = relationships.AcceptCustomerRelationship(
        relationship_service_pb2.AcceptCustomerRelationshipRequest(name=asked.name, etag=asked.etag),
        token(secret, customer.name),
    )
    assert accepted.state == relationship_pb2.CustomerRelationship.STATE_ACTIVE, accepted
    billed = relationships.ListCustomerRelationships(
        relationship_service_pb2.ListCustomerRelationshipsRequest(), as_provider
    )
    assert accepted.name in [relationship.name for relationship in billed.customer_relationships], billed
    print(f"{accepted.name} is ACTIVE; {provider.name} lists the relationship it bills")

    # A second live link for the pair: the client reads why from the ErrorInfo.
    try:
        relationships.InviteReseller(invitation, as_provider)
    except grpc.RpcError as error:
        info = error_info(error)
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, error
        assert info is not None and info.domain == "partnercenter", error
        assert info.reason == "LIVE_LINK_EXISTS", info
        print(f"a second invitation: {error.code().name}, reason {info.reason}")
    else:
        raise AssertionError("a second live link for the pair was accepted")

    # A token the server cannot verify: UNAUTHENTICATED, and the reason says which kind of wrong.
    try:
        partners.ListPartners(partner_service_pb2.ListPartnersRequest(), "not-a-jwt")
    except grpc.RpcError as error:
        info = error_info(error)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
        assert info is not None and info.reason == "TOKEN_INVALID", error
        print(f"a malformed token: {error.code().name}, reason {info.reason}")
    else:
        raise AssertionError("a malformed token was accepted")


if __name__ == "__main__":
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50050"
    secret = os.environ.get("AUTH_JWT_SECRET")
    if not secret:
        sys.exit("set AUTH_JWT_SECRET to the dev server's secret")
    main(address, secret)
