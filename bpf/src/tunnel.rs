//! Where connections the connect hook sent into the tunnel were going.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

use aya::maps::{HashMap, MapData};
use stockade_bpf_common::{
    maps::FAMILY_IPV4,
    tunnel::{TunnelTarget, TUNNELED_MAP},
};

use crate::dataplane::from_pin;
use crate::error::BpfError;
use crate::loader;

/// The map in which the kernel files each redirected connection's target
/// under the client socket's local port. The tunnel takes an entry when it
/// accepts the connection; entries nobody takes (the client gave up) age
/// out of the LRU map.
pub struct TunnelTargets {
    map: HashMap<MapData, u32, TunnelTarget>,
}

impl TunnelTargets {
    /// Opens the map of the node whose pins are under `pin_dir` (the
    /// dataplane must have been opened there).
    pub fn open_pinned(pin_dir: &Path) -> Result<Self, BpfError> {
        Ok(TunnelTargets {
            map: from_pin(&loader::maps_dir(pin_dir), TUNNELED_MAP)?,
        })
    }

    /// Removes and returns the target of the connection whose client
    /// socket has `local_port`, if the kernel filed one.
    pub fn take(&mut self, local_port: u16) -> Result<Option<TunnelTarget>, BpfError> {
        let key = u32::from(local_port);
        let target = match self.map.get(&key, 0) {
            Ok(target) => target,
            Err(aya::maps::MapError::KeyNotFound) => return Ok(None),
            Err(source) => {
                return Err(BpfError::Map {
                    map: TUNNELED_MAP,
                    step: "read",
                    source,
                })
            }
        };
        // Gone already is fine: the entry was ours to remove.
        let _ = self.map.remove(&key);
        Ok(Some(target))
    }
}

/// The original destination of a target, when it is one the tunnel
/// carries (IPv4).
pub fn target_destination(target: &TunnelTarget) -> Option<SocketAddr> {
    if target.family != FAMILY_IPV4 {
        return None;
    }
    let a = &target.dst_addr;
    Some(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(a[12], a[13], a[14], a[15]),
        target.dst_port,
    )))
}
