//! The node's side of enforcement: what runs locally ([`local`]), the
//! policy engine's map contents as kernel bytes ([`encode`]), and the
//! reconciler that keeps the pinned maps equal to them ([`reconcile`]).

pub mod encode;
pub mod local;
pub mod reconcile;

pub use encode::encode;
pub use reconcile::DataplaneStatus;
