//! `Database::find_by_id`, the read behind every Get, runs on a driver of its own (rusqlite on
//! SQLite, pipelined tokio-postgres connections on PostgreSQL); it must return exactly the model
//! SeaORM reads, for every column type, null and not, on the backend under test, and survive the
//! database dropping its connections.

use chrono::{DateTime, Utc};
use pc_api::{
    partner::v1::{GetPartnerRequest, ProgramRole},
    types::v1::Cloud,
};
use pc_store::{
    Database, customer_relationships, customers, partners, reseller_links, subscriptions, support_assignments,
};
use pc_tests::spawn_app;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, PrimaryKeyTrait, Statement,
    TryIntoModel,
};
use uuid::Uuid;

/// Writes `model` through SeaORM, then reads it back both ways.
async fn assert_reads_back<E>(db: &Database, id: Uuid, model: E::Model)
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + PartialEq,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    E::ActiveModel: TryIntoModel<E::Model>,
{
    E::insert(model.clone().into_active_model()).exec_without_returning(db.primary()).await.expect("insert");
    let direct = db.find_by_id::<E>(id).await.expect("point read");
    let through_sea_orm = E::find_by_id(id).one(db.reader()).await.expect("SeaORM read");
    assert_eq!(direct, through_sea_orm);
    assert_eq!(direct, Some(model));
}

#[tokio::test]
async fn point_reads_return_exactly_what_sea_orm_reads() {
    let app = spawn_app().await;
    let db = &app.db;
    let created = pc_store::db::now();
    // Microseconds that do not round, and a date far from now.
    let accepted: DateTime<Utc> = "2031-02-03T04:05:06.000007Z".parse().unwrap();
    let id = Uuid::now_v7;

    let provider = partners::Model {
        id: id(),
        display_name: "Fabrikam Distribución 株式会社".into(),
        tenant_id: Uuid::new_v4(),
        country_code: "ES".into(),
        cloud: pc_domain::Cloud::Global,
        program_role: pc_domain::ProgramRole::IndirectProvider,
        state: pc_domain::PartnerState::Active,
        revision: i64::from(i32::MAX) + 7,
        create_time: created,
        update_time: accepted,
    };
    let reseller = partners::Model {
        id: id(),
        tenant_id: Uuid::new_v4(),
        program_role: pc_domain::ProgramRole::IndirectReseller,
        ..provider.clone()
    };
    for partner in [&provider, &reseller] {
        assert_reads_back::<partners::Entity>(db, partner.id, partner.clone()).await;
    }

    let customer = customers::Model {
        id: id(),
        display_name: "Contoso".into(),
        tenant_id: Uuid::new_v4(),
        primary_domain: "contoso.example".into(),
        country_code: "US".into(),
        cloud: pc_domain::Cloud::Global,
        created_by: format!("partners/{}", reseller.id),
        revision: 1,
        create_time: created,
        update_time: created,
    };
    assert_reads_back::<customers::Entity>(db, customer.id, customer.clone()).await;

    let link = reseller_links::Model {
        id: id(),
        provider_id: provider.id,
        reseller_id: reseller.id,
        state: pc_domain::LinkState::Active,
        accept_time: Some(accepted),
        end_time: None,
        expire_time: None,
        revision: 2,
        create_time: created,
        update_time: accepted,
    };
    assert_reads_back::<reseller_links::Entity>(db, link.id, link).await;

    let relationship = customer_relationships::Model {
        id: id(),
        partner_id: reseller.id,
        customer_id: customer.id,
        indirect_provider_id: Some(provider.id),
        state: pc_domain::RelationshipState::Pending,
        accept_time: None,
        end_time: None,
        expire_time: Some(accepted),
        revision: 1,
        create_time: created,
        update_time: created,
    };
    assert_reads_back::<customer_relationships::Entity>(db, relationship.id, relationship).await;

    let subscription = subscriptions::Model {
        id: id(),
        customer_id: customer.id,
        offer_id: "offer-365-e3".into(),
        product_family: pc_domain::ProductFamily::Productivity,
        quantity: i32::MAX,
        sales_channel: pc_domain::SalesChannel::VendorDirect,
        partner_of_record_id: None,
        billing_partner_id: None,
        state: pc_domain::SubscriptionState::Active,
        revision: 1,
        create_time: created,
        update_time: created,
    };
    assert_reads_back::<subscriptions::Entity>(db, subscription.id, subscription.clone()).await;

    let assignment = support_assignments::Model {
        id: id(),
        subscription_id: subscription.id,
        partner_id: reseller.id,
        state: pc_domain::AssignmentState::Ended,
        accept_time: Some(created),
        end_time: Some(accepted),
        expire_time: Some(created),
        revision: 3,
        create_time: created,
        update_time: accepted,
    };
    assert_reads_back::<support_assignments::Entity>(db, assignment.id, assignment).await;

    assert_eq!(db.find_by_id::<partners::Entity>(id()).await.unwrap(), None, "an unknown id is no row");
    assert_eq!(db.find_by_id::<subscriptions::Entity>(provider.id).await.unwrap(), None, "ids are per table");
}

/// On PostgreSQL, Gets read on connections of their own. When the database drops them (a
/// restart, a failover, an idle timeout), the next Gets must still answer, without an error and
/// without restarting the service.
#[tokio::test]
async fn gets_survive_the_database_dropping_their_connections() {
    let app = spawn_app().await;
    if app.db.primary().get_database_backend() != DbBackend::Postgres {
        return; // SQLite reads the file in-process: there is no connection to lose.
    }
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let get = || {
        let mut client = app.partners();
        let name = partner.name.clone();
        async move { client.get_partner(GetPartnerRequest { name }).await.map(tonic::Response::into_inner) }
    };
    // Enough Gets to open every point-read connection (one per CPU).
    for _ in 0..16 {
        assert_eq!(get().await.expect("get before"), partner);
    }

    let terminate = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
        [pc_store::POINT_READS_APPLICATION_NAME.into()],
    );
    let row = app.db.primary().query_one_raw(terminate).await.expect("terminate").expect("a count");
    let terminated: i64 = row.try_get_by_index(0).expect("count");
    assert!(terminated >= 1, "the Gets above read on connections named {}", pc_store::POINT_READS_APPLICATION_NAME);

    for attempt in 0..16 {
        let got =
            get().await.unwrap_or_else(|status| panic!("get {attempt} after the connections dropped: {status:?}"));
        assert_eq!(got, partner);
    }
}
