//! OpenAPI schemas (feature `openapi`) of the two values whose written form
//! the `ToSchema` derive cannot see, because serde reads and writes them
//! through another type: a [`PortRange`] is a string, and a [`Peer`] is the
//! object of its private spec. Every other type derives its schema where it
//! is defined. Schema only: nothing here changes how a value is read or
//! written.

use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::values::{AppSelector, Peer, PortRange};

impl PartialSchema for PortRange {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "An inclusive range of ports, each 0-65535: one port (`443`) or \
                 `first-last` (`8000-8080`), first no greater than last.",
            ))
            .pattern(Some("^[0-9]{1,5}(-[0-9]{1,5})?$"))
            .examples(["443", "8000-8080"])
            .into()
    }
}

impl ToSchema for PortRange {}

impl PartialSchema for Peer {
    fn schema() -> RefOr<Schema> {
        let cidr = ObjectBuilder::new()
            .title(Some("CidrPeer"))
            .description(Some("Addresses that are not cluster endpoints, by prefix."))
            .property(
                "cidr",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("An IPv4 or IPv6 prefix."))
                    .examples(["10.0.0.0/8", "fd00::/8"]),
            )
            .required("cidr")
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
        OneOfBuilder::new()
            .description(Some(
                "One side of a rule: applications of the cluster by name \
                 (`{zone, app?, service?}`), or addresses outside it (`{cidr}`); never both.",
            ))
            .item(Ref::from_schema_name(AppSelector::name()))
            .item(cidr)
            .into()
    }
}

impl ToSchema for Peer {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((AppSelector::name().into(), AppSelector::schema()));
        <AppSelector as ToSchema>::schemas(schemas);
    }
}
