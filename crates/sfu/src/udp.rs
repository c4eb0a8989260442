//! The engine's socket. Sending: datagrams queued while peers are drained, then handed to the
//! kernel in batches, one `sendmmsg` system call per up to [`BATCH`] datagrams on Linux (each to
//! its own peer address). The kernel send path, not crypto, is what an SFU spends most on; the
//! system call entry and exit are the part a batch shares. Receiving: each datagram with the time
//! the kernel queued it (`SO_TIMESTAMPNS`), so forwarding latency includes its wait in the socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::Interest;
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

/// Has the kernel stamp each datagram when it queues it on the socket.
pub(crate) fn stamp_arrivals(socket: &std::net::UdpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and an int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "no arrival times on the media socket");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// A datagram read into the caller's buffer.
pub(crate) struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// When the kernel queued it (when it was read, where the kernel gives no time).
    pub arrived: Instant,
}

/// Reads one datagram without waiting: `WouldBlock` when none is queued.
pub(crate) fn try_recv(socket: &UdpSocket, buf: &mut [u8]) -> std::io::Result<Received> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        socket.try_io(Interest::READABLE, || recv_stamped(socket.as_raw_fd(), buf))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = Interest::READABLE;
        let (len, from) = socket.try_recv_from(buf)?;
        Ok(Received { len, from, arrived: Instant::now() })
    }
}

#[cfg(target_os = "linux")]
fn recv_stamped(fd: std::os::fd::RawFd, buf: &mut [u8]) -> std::io::Result<Received> {
    let mut addr: libc::sockaddr_storage = unsafe_zeroed();
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // Room for one SCM_TIMESTAMPNS message (a header and a timespec), u64-aligned as cmsgs are.
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe_zeroed();
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` points into locals (or `buf`) alive for the call, with the
    // lengths given; the kernel writes at most those. The socket is non-blocking (tokio's).
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let now = Instant::now();
    let from = read_sockaddr(&addr).ok_or_else(|| std::io::Error::other("datagram from an unknown address family"))?;
    let mut arrived = now;
    // SAFETY: `msg` was filled by recvmsg; the CMSG_* macros walk the control buffer it describes,
    // and a SCM_TIMESTAMPNS message carries one timespec (read unaligned, as cmsg data may be).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                arrived = instant_of(ts, now);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Received { len: n as usize, from, arrived })
}

/// The `Instant` of a kernel (wall clock) time, from how long before `now` it was; a time in the
/// future or implausibly old (a clock step) counts as `now`.
#[cfg(target_os = "linux")]
fn instant_of(ts: libc::timespec, now: Instant) -> Instant {
    let stamped = SystemTime::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    match SystemTime::now().duration_since(stamped) {
        Ok(waited) if waited < Duration::from_secs(10) => now.checked_sub(waited).unwrap_or(now),
        _ => now,
    }
}

#[cfg(target_os = "linux")]
fn read_sockaddr(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id)))
        }
        _ => None,
    }
}

/// A datagram waiting to be sent, and whose it is (for its counters).
pub(crate) struct Outgoing {
    pub peer: PeerId,
    pub to: SocketAddr,
    pub data: Vec<u8>,
    /// For an ICE-TCP connection ([`crate::tcp`]), not the UDP socket.
    pub tcp: bool,
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
                tcp: false,
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
            let mut out = vec![Outgoing { peer: 0, to: dst.local_addr().unwrap(), data: b"six".to_vec(), tcp: false }];
            send_all(&v6, &mut out, |_| refused += 1);
            assert_eq!(dst.recv(&mut buf).unwrap(), 3);
        }
    }

    #[tokio::test]
    async fn a_datagram_read_late_carries_the_time_it_arrived() {
        let std = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        stamp_arrivals(&std);
        let socket = UdpSocket::from_std(std).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(try_recv(&socket, &mut buf).err().map(|e| e.kind()), Some(std::io::ErrorKind::WouldBlock));
        // The kernel turns receive timestamps on lazily (a static key flipped from a work queue
        // after the first SO_TIMESTAMPNS socket): until then a datagram is stamped when it is read.
        // CI saw that on a loaded machine, so the first tries may be stamped late; one must not be.
        let mut tries = Vec::new();
        for _ in 0..20 {
            let sent = Instant::now();
            sender.send_to(b"hello", socket.local_addr().unwrap()).unwrap();
            tokio::time::sleep(Duration::from_millis(60)).await;
            socket.readable().await.unwrap();
            let read = Instant::now();
            let rx = try_recv(&socket, &mut buf).unwrap();
            assert_eq!((&buf[..rx.len], rx.from), (&b"hello"[..], sender.local_addr().unwrap()));
            // Stamped on arrival, not when read 60 ms later (5 ms of slack for a stepped clock).
            let on_arrival =
                rx.arrived + Duration::from_millis(50) <= read && rx.arrived + Duration::from_millis(5) >= sent;
            if on_arrival || !cfg!(target_os = "linux") {
                tries.clear();
                break;
            }
            tries.push((rx.arrived.saturating_duration_since(sent), read.saturating_duration_since(rx.arrived)));
        }
        assert!(tries.is_empty(), "never stamped on arrival: (after send, before read) {tries:?}");
        let v6 = UdpSocket::bind("[::1]:0").await;
        if let (Ok(v6), Ok(s6)) = (v6, std::net::UdpSocket::bind("[::1]:0")) {
            s6.send_to(b"six", v6.local_addr().unwrap()).unwrap();
            v6.readable().await.unwrap();
            let rx = try_recv(&v6, &mut buf).unwrap();
            assert_eq!((rx.len, rx.from), (3, s6.local_addr().unwrap()));
        }
    }
}
