//! Partner handlers: CreatePartner, GetPartner, ListPartners, UpdatePartner, SuspendPartner and
//! ReactivatePartner. Any caller reads the directory; only operators change it.

use pc_api::partner::v1::{
    CreatePartnerRequest, GetPartnerRequest, ListPartnersRequest, ListPartnersResponse, Partner,
    ReactivatePartnerRequest, SuspendPartnerRequest, UpdatePartnerRequest,
};
use pc_domain::{CountryCode, DisplayName, Error, Etag, Origin, PageKey, PartnerId, Principal, TenantId};
use pc_domain::{partners::StateChange, rules};
use pc_server::convert::{ProtoEnum, filter_enum, list_page, required_enum, timestamp, update_paths};
use pc_server::create::Create;
use pc_store::{
    Database, DatabaseTransaction, customer_relationships,
    locks::{Lock, lock_tenant},
    partners::{self, Model, NewPartner, PartnerFilter},
    write,
};

/// Fields UpdatePartner may change.
const MUTABLE_FIELDS: [&str; 2] = ["display_name", "country_code"];

/// The row as the API shows it.
pub fn to_proto(row: Model) -> Result<Partner, Error> {
    Ok(Partner {
        name: PartnerId(row.id).name(),
        display_name: row.display_name,
        tenant_id: row.tenant_id.hyphenated().to_string(),
        country_code: row.country_code,
        cloud: row.cloud.to_proto(),
        program_role: row.program_role.to_proto(),
        state: row.state.to_proto(),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

fn parse_new_partner(request: CreatePartnerRequest) -> Result<NewPartner, Error> {
    let partner = request.partner.ok_or_else(|| Error::invalid("partner", "is required"))?;
    Ok(NewPartner {
        display_name: DisplayName::parse("partner.display_name", &partner.display_name)?.into_inner(),
        tenant_id: TenantId::parse("partner.tenant_id", &partner.tenant_id)?,
        country_code: CountryCode::parse("partner.country_code", &partner.country_code)?.as_str().to_owned(),
        cloud: required_enum("partner.cloud", partner.cloud)?,
        program_role: required_enum("partner.program_role", partner.program_role)?,
    })
}

pub async fn create_partner(db: &Database, caller: Principal, request: CreatePartnerRequest) -> Result<Partner, Error> {
    let create = Create::new(caller, "CreatePartner", &request)?;
    let new = parse_new_partner(request)?;
    caller.require_operator("enrol partners")?;

    let insert = async |txn: &DatabaseTransaction| {
        lock_tenant(txn, new.cloud, new.tenant_id.0).await?;
        let holds_relationship =
            customer_relationships::tenant_has_active_relationship(txn, new.cloud, new.tenant_id).await?;
        rules::tenant_not_a_customer(holds_relationship)?;
        let row = partners::insert(txn, new).await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    let partner = create.run(db, insert, to_proto).await?;
    tracing::info!(partner = %partner.name, "partner enrolled");
    Ok(partner)
}

pub async fn get_partner(db: &Database, _caller: Principal, request: GetPartnerRequest) -> Result<Partner, Error> {
    let id = PartnerId::parse("name", &request.name)?;
    // The directory is readable by every authenticated caller.
    to_proto(partners::read(db, id).await?)
}

pub async fn list_partners(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListPartnersRequest,
) -> Result<ListPartnersResponse, Error> {
    let filter = PartnerFilter {
        cloud: filter_enum("cloud", request.cloud)?,
        program_role: filter_enum("program_role", request.program_role)?,
        state: filter_enum("state", request.state)?,
    };
    // Every caller reads the directory; a page token still binds to the caller that got it.
    let query = (caller, filter);
    let fetch = |conn, page| async move { partners::list(&conn, filter, page).await };
    list_page(db, &request, pages, &query, fetch, to_proto).await
}

pub async fn update_partner(db: &Database, caller: Principal, request: UpdatePartnerRequest) -> Result<Partner, Error> {
    let partner = request.partner.ok_or_else(|| Error::invalid("partner", "is required"))?;
    let id = PartnerId::parse("partner.name", &partner.name)?;
    let etag = Etag::parse_optional("partner.etag", &partner.etag)?;
    let paths = update_paths(request.update_mask.as_ref(), &MUTABLE_FIELDS, |field| match field {
        "display_name" => !partner.display_name.is_empty(),
        "country_code" => !partner.country_code.is_empty(),
        _ => false,
    })?;
    let (mut display_name, mut country_code) = (None, None);
    for path in &paths {
        match *path {
            "display_name" => {
                display_name = Some(DisplayName::parse("partner.display_name", &partner.display_name)?.into_inner());
            }
            "country_code" => {
                country_code =
                    Some(CountryCode::parse("partner.country_code", &partner.country_code)?.as_str().to_owned());
            }
            _ => {}
        }
    }
    caller.require_operator("update partners")?;

    let txn = db.begin().await?;
    let current = partners::get_one_locked(&txn, id, Lock::Update).await?;
    Etag::check(etag, current.revision, id)?;
    let origin = Origin::new("UpdatePartner", caller);
    let updated = write::update(&txn, &current, etag, &origin, current.facts().parties(), |row, _| {
        row.display_name = display_name.unwrap_or_else(|| row.display_name.clone());
        row.country_code = country_code.unwrap_or_else(|| row.country_code.clone());
    })
    .await?;
    txn.commit().await?;
    to_proto(updated)
}

pub async fn suspend_partner(
    db: &Database,
    caller: Principal,
    request: SuspendPartnerRequest,
) -> Result<Partner, Error> {
    change_state(db, caller, StateChange::Suspend, &request.name, &request.etag).await
}

pub async fn reactivate_partner(
    db: &Database,
    caller: Principal,
    request: ReactivatePartnerRequest,
) -> Result<Partner, Error> {
    change_state(db, caller, StateChange::Reactivate, &request.name, &request.etag).await
}

/// SuspendPartner and ReactivatePartner: a partner's state machine (rule 3's SUSPENDED).
async fn change_state(
    db: &Database,
    caller: Principal,
    change: StateChange,
    name: &str,
    etag: &str,
) -> Result<Partner, Error> {
    let id = PartnerId::parse("name", name)?;
    let etag = Etag::parse_optional("etag", etag)?;
    caller.require_operator(change.what())?;

    let txn = db.begin().await?;
    // Locked before the suspension is stamped: whatever the partner started and still holds its
    // row shared for commits first, so nothing it started is dated after its suspension.
    let current = partners::get_one_locked(&txn, id, Lock::Update).await?;
    Etag::check(etag, current.revision, id)?;
    let to = pc_domain::partners::change_state(change, &current.facts())?;
    let origin = Origin::new(change.method(), caller);
    let updated =
        write::update(&txn, &current, etag, &origin, current.facts().parties(), |row, _| row.state = to).await?;
    txn.commit().await?;
    tracing::info!(partner = %id, state = %to, "partner state changed");
    to_proto(updated)
}
