//! Customer handlers: CreateCustomer, GetCustomer and ListCustomers. Operators and partners create
//! customers; a customer is visible to operators, to itself, to partners holding an ACTIVE
//! relationship with it (or billing one), and to the partner that created it while nobody holds
//! an ACTIVE relationship (`pc_domain::customers`). Anything else is
//! PERMISSION_DENIED whether or not it exists.
//!
//! A partner's CreateCustomer claims a tenant and domain without proof: proof is the identity
//! provider's, which issues a `customers/{id}` token only to the tenant itself. So the claim stays
//! its creator's private record until the customer accepts a relationship, and a clash with a
//! record the caller cannot read is ALREADY_EXISTS that names only the caller's own input: that a
//! tenant or domain is taken is no secret (the anchor offers a domain availability check), the
//! record that took it is.

use pc_api::partner::v1::{
    CreateCustomerRequest, Customer, GetCustomerRequest, ListCustomersRequest, ListCustomersResponse,
};
use pc_domain::{Cloud, PageKey, rules};
use pc_domain::{CountryCode, CustomerId, DisplayName, DomainName, Error, Etag, Principal, TenantId};
use pc_server::convert::{ProtoEnum, filter_enum, list_page, required_enum, timestamp};
use pc_server::create::Create;
use pc_store::{
    Database, DatabaseTransaction,
    customers::{self, Model, NewCustomer},
    locks::{Lock, lock_tenant},
    partners,
};

pub fn to_proto(row: Model) -> Result<Customer, Error> {
    Ok(Customer {
        name: CustomerId(row.id).name(),
        display_name: row.display_name,
        tenant_id: row.tenant_id.hyphenated().to_string(),
        primary_domain: row.primary_domain,
        country_code: row.country_code,
        cloud: row.cloud.to_proto(),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

fn parse_new_customer(request: CreateCustomerRequest, caller: &Principal) -> Result<NewCustomer, Error> {
    let customer = request.customer.ok_or_else(|| Error::invalid("customer", "is required"))?;
    Ok(NewCustomer {
        display_name: DisplayName::parse("customer.display_name", &customer.display_name)?.into_inner(),
        tenant_id: TenantId::parse("customer.tenant_id", &customer.tenant_id)?,
        primary_domain: DomainName::parse("customer.primary_domain", &customer.primary_domain)?.into_inner(),
        country_code: CountryCode::parse("customer.country_code", &customer.country_code)?.as_str().to_owned(),
        cloud: required_enum("customer.cloud", customer.cloud)?,
        created_by: caller.to_string(),
    })
}

pub async fn create_customer(
    db: &Database,
    caller: Principal,
    request: CreateCustomerRequest,
) -> Result<Customer, Error> {
    let create = Create::new(caller, "CreateCustomer", &request)?;
    let new = parse_new_customer(request, &caller)?;
    pc_domain::customers::may_create(&caller)?;

    let insert = async |txn: &DatabaseTransaction| {
        lock_tenant(txn, new.cloud, new.tenant_id.0).await?;
        if let Principal::Partner(partner_id) = caller {
            let creator = partners::find_locked(txn, partner_id, Lock::Share).await?;
            pc_domain::customers::creator_may_create(partner_id, creator.map(|row| row.facts()).as_ref(), new.cloud)?;
        }
        let enrolled = partners::tenant_enrolled(txn, new.cloud, new.tenant_id).await?;
        rules::tenant_not_a_partner("the new customer", enrolled)?;
        let row = customers::insert(txn, new).await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    let customer = create.run(db, insert, to_proto).await?;
    tracing::info!(customer = %customer.name, "customer created");
    Ok(customer)
}

pub async fn get_customer(db: &Database, caller: Principal, request: GetCustomerRequest) -> Result<Customer, Error> {
    let id = CustomerId::parse("name", &request.name)?;
    let row = customers::read(db, id).await?;
    // Rule 9, or any role the partner holds of the customer (rule 13).
    to_proto(pc_server::access::to_read_customer(db.reader(), &caller, id, row).await?.0)
}

pub async fn list_customers(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListCustomersRequest,
) -> Result<ListCustomersResponse, Error> {
    let cloud: Option<Cloud> = filter_enum("cloud", request.cloud)?;
    let query = (caller, cloud);
    let fetch = |conn, page| async move { customers::list(&conn, caller, cloud, page).await };
    list_page(db, &request, pages, &query, fetch, to_proto).await
}
