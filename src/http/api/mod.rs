//! The REST API under `/v1`, by audience: operators (lots, bookings, keys, bids and awards)
//! and travellers (sign-in, offers, bids), partners acting for travellers of one operator.

pub mod auth;
pub mod bookings;
pub mod data_rights;
pub mod errors;
pub mod keys;
pub mod lot_bids;
pub mod lots;
pub mod messages;
pub mod traveller;
pub mod webhook_endpoints;
pub mod webhooks;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(lots::create)
        .service(lots::list)
        .service(lots::get)
        .service(lots::update)
        .service(lots::open)
        .service(lots::cancel)
        .service(lots::change_capacity)
        .service(lot_bids::list)
        .service(lot_bids::award)
        .service(lot_bids::approve)
        .service(lot_bids::reject)
        .service(bookings::import)
        .service(keys::list)
        .service(keys::create)
        .service(keys::revoke)
        .service(traveller::sign_in)
        .service(traveller::partner_session)
        .service(traveller::offers)
        .service(traveller::place)
        .service(traveller::get)
        .service(traveller::change)
        .service(traveller::withdraw)
        .service(traveller::upgrade_now)
        .service(traveller::replace_card)
        .service(webhooks::payments)
        .service(messages::list)
        .service(messages::retry)
        .service(webhook_endpoints::create)
        .service(webhook_endpoints::list)
        .service(webhook_endpoints::get)
        .service(webhook_endpoints::update)
        .service(webhook_endpoints::remove)
        .service(webhook_endpoints::deliveries)
        .service(data_rights::operator_export)
        .service(data_rights::operator_erase)
        .service(data_rights::get_retention)
        .service(data_rights::set_retention)
        .service(data_rights::traveller_export)
        .service(data_rights::traveller_erase)
        .service(data_rights::preferences)
        .service(data_rights::set_preferences);
}
