//! The sockets that listen (TCP) or wait for datagrams (bound, unconnected
//! UDP) in this network namespace, by inode, asked of the kernel through
//! `sock_diag` netlink with a state filter. The kernel leaves out every
//! other socket itself: `/proc/net/tcp` would print all of them, and on a
//! busy node that is hundreds of thousands of TIME_WAIT lines each scan.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use stockade_policy::L4Protocol;

/// A listening or bound socket: its address, port and protocol.
pub type Bound = (IpAddr, u16, L4Protocol);

/// Every listening TCP socket and bound UDP socket, by inode.
pub fn bound_sockets() -> io::Result<BTreeMap<u64, Bound>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut out = BTreeMap::new();
    for family in [AF_INET, AF_INET6] {
        for (protocol, l4, states) in [
            (IPPROTO_TCP, L4Protocol::Tcp, StateFlags::LISTEN),
            // An unconnected UDP socket is in TCP_CLOSE, as /proc shows it.
            (IPPROTO_UDP, L4Protocol::Udp, StateFlags::CLOSE),
        ] {
            let socket_id = match family {
                AF_INET => SocketId::new_v4(),
                _ => SocketId::new_v6(),
            };
            let request = InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id,
            };
            dump(&mut socket, request, |ip, port, inode| {
                out.insert(u64::from(inode), (ip, port, l4));
            })?;
        }
    }
    Ok(out)
}

/// Sends one dump request and hands each socket of the answer to `found`.
fn dump(
    socket: &mut Socket,
    request: InetRequest,
    mut found: impl FnMut(IpAddr, u16, u32),
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut receive = vec![0; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut receive[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&receive[offset..size])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    let id = &response.header.socket_id;
                    found(id.source_address, id.source_port, response.header.inode);
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    return Err(io::Error::other(format!("sock_diag: {e:?}")));
                }
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_found_by_its_inode() {
        use std::os::unix::fs::MetadataExt as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let udp_port = udp.local_addr().expect("addr").port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let inode = |fd: i32| {
            std::fs::metadata(format!("/proc/self/fd/{fd}"))
                .expect("fd")
                .ino()
        };
        use std::os::fd::AsRawFd as _;
        let found = bound_sockets().expect("sock_diag");
        assert_eq!(
            found.get(&inode(listener.as_raw_fd())),
            Some(&(IpAddr::from([127, 0, 0, 1]), port, L4Protocol::Tcp))
        );
        assert_eq!(
            found.get(&inode(udp.as_raw_fd())),
            Some(&(IpAddr::from([127, 0, 0, 1]), udp_port, L4Protocol::Udp))
        );
        assert!(
            !found.contains_key(&inode(client.as_raw_fd())),
            "a connected socket is not listed"
        );
    }
}
