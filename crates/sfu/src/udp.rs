//! Sending the engine's datagrams: queued while peers are drained, then handed to the kernel in
//! batches, one `sendmmsg` system call per up to [`BATCH`] datagrams on Linux (each to its own
//! peer address). The kernel send path, not crypto, is what an SFU spends most on; the system
//! call entry and exit are the part a batch shares.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::PeerId;

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// Kernel buffer asked for each way on the socket every peer shares.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

/// The kernel's default receive buffer (~208 KiB) holds a few ms of a busy server's input, and
/// anything arriving while the engine thread waits for a core beyond that was dropped (a fifth
/// of the uplink at 200 clients on the saturated reference box). Asks for 4 MiB each way; the
/// kernel caps it at `net.core.rmem_max` / `wmem_max`.
pub(crate) fn size_buffers(socket: &std::net::UdpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            let size = SOCKET_BUFFER;
            // SAFETY: a valid socket and an int option value of the size given.
            let rc = unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                tracing::warn!(error = %std::io::Error::last_os_error(), "cannot size the media socket's buffers");
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (socket, SOCKET_BUFFER);
}

/// A datagram waiting to be sent, and whose it is (for its counters).
pub(crate) struct Outgoing {
    pub peer: PeerId,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// Sends every queued datagram and empties `out`; calls `failed` for each one the kernel refused
/// (a full send buffer: UDP drops rather than waits).
pub(crate) fn send_all(socket: &UdpSocket, out: &mut Vec<Outgoing>, mut failed: impl FnMut(&Outgoing)) {
    for chunk in out.chunks(BATCH) {
        send_chunk(socket, chunk, &mut failed);
    }
    out.clear();
}

#[cfg(target_os = "linux")]
fn send_chunk(socket: &UdpSocket, chunk: &[Outgoing], failed: &mut impl FnMut(&Outgoing)) {
    use std::os::fd::AsRawFd;

    let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe_zeroed();
    let mut iovs: [libc::iovec; BATCH] = unsafe_zeroed();
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe_zeroed();
    for (i, o) in chunk.iter().enumerate() {
        let len = write_sockaddr(o.to, &mut addrs[i]);
        iovs[i] = libc::iovec { iov_base: o.data.as_ptr() as *mut libc::c_void, iov_len: o.data.len() };
        msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
        msgs[i].msg_hdr.msg_namelen = len;
        msgs[i].msg_hdr.msg_iov = &mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    let fd = socket.as_raw_fd();
    let mut sent = 0;
    while sent < chunk.len() {
        let rest = (chunk.len() - sent) as libc::c_uint;
        // SAFETY: `msgs[sent..]` are initialised headers whose name and iovec pointers point into
        // `addrs`, `iovs` and the datagrams of `chunk`, all alive and unmoved for this call; the
        // kernel only reads them (and writes `msg_len`, inside `msgs`).
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr().add(sent), rest, libc::MSG_DONTWAIT) };
        if n <= 0 {
            // The datagram at `sent` was refused: count it and go on with the rest.
            failed(&chunk[sent]);
            sent += 1;
        } else {
            sent += n as usize;
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn send_chunk(socket: &UdpSocket, chunk: &[Outgoing], failed: &mut impl FnMut(&Outgoing)) {
    for o in chunk {
        if socket.try_send_to(&o.data, o.to).is_err() {
            failed(o);
        }
    }
}

#[cfg(target_os = "linux")]
fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for libc's plain C structs (and arrays of them), for which all-zero bytes
    // are a valid value (null pointers, zero lengths).
    unsafe { std::mem::zeroed() }
}

/// Writes `addr` as a C socket address; returns its length.
#[cfg(target_os = "linux")]
fn write_sockaddr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_reaches_every_destination_v4_and_v6() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut out: Vec<Outgoing> = (0..150u8)
            .map(|i| Outgoing {
                peer: u64::from(i % 2),
                to: if i % 2 == 0 { a.local_addr().unwrap() } else { b.local_addr().unwrap() },
                data: vec![i; 20 + usize::from(i)],
            })
            .collect();
        let mut refused = 0;
        send_all(&socket, &mut out, |_| refused += 1);
        assert!(out.is_empty());
        assert_eq!(refused, 0);
        let mut buf = [0u8; 512];
        for (sock, first) in [(&a, 0u8), (&b, 1)] {
            for i in (first..150).step_by(2) {
                let n = sock.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], vec![i; 20 + usize::from(i)].as_slice(), "in order, intact");
            }
        }
        if let (Ok(v6), Ok(dst)) = (UdpSocket::bind("[::1]:0").await, std::net::UdpSocket::bind("[::1]:0")) {
            let mut out = vec![Outgoing { peer: 0, to: dst.local_addr().unwrap(), data: b"six".to_vec() }];
            send_all(&v6, &mut out, |_| refused += 1);
            assert_eq!(dst.recv(&mut buf).unwrap(), 3);
        }
    }
}
