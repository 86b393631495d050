//! Host names resolved once per run, not once per connection.
//!
//! Without this every new connection asks the system resolver again: a blocking
//! `getaddrinfo` on tokio's thread pool, a DNS round trip for a Kubernetes service name,
//! paid inside the first request's TTFT and repeated for each of thousands of streams.
//! The addresses are kept for the client's life; when none of them takes a connection
//! the name is resolved again once (the service may have moved) before giving up.
//! Addresses are tried in the resolver's order, so `localhost` falls back from `::1` to
//! `127.0.0.1` as the system would.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;

type Addrs = Arc<[SocketAddr]>;

#[derive(Default)]
pub struct Resolver {
    /// One entry per host and port (benchmarks talk to one, so a list beats a map).
    names: Mutex<Vec<Name>>,
}

struct Name {
    host: String,
    port: u16,
    /// An async lock, so that a thousand first connections wait for one lookup.
    addrs: Arc<tokio::sync::Mutex<Option<Addrs>>>,
    lookups: Arc<std::sync::atomic::AtomicU32>,
}

impl Resolver {
    /// A TCP connection to `host` (a name, or an IP address, bracketed or not).
    pub async fn connect(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return TcpStream::connect((ip, port)).await;
        }
        let addrs = self.addrs(bare, port, None).await?;
        match first_that_connects(&addrs).await {
            Ok(s) => Ok(s),
            Err(e) => {
                let again = self.addrs(bare, port, Some(&addrs)).await?;
                if again == addrs {
                    return Err(e);
                }
                first_that_connects(&again).await
            }
        }
    }

    /// The addresses of `host`: the kept ones, unless they are `stale` (they failed), in
    /// which case the name is looked up again (once, however many tasks saw them fail).
    async fn addrs(&self, host: &str, port: u16, stale: Option<&Addrs>) -> io::Result<Addrs> {
        let (slot, lookups) = {
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let i = match names.iter().position(|n| n.port == port && n.host == host) {
                Some(i) => i,
                None => {
                    names.push(Name {
                        host: host.to_string(),
                        port,
                        addrs: Arc::default(),
                        lookups: Arc::default(),
                    });
                    names.len() - 1
                }
            };
            (names[i].addrs.clone(), names[i].lookups.clone())
        };
        let mut slot = slot.lock().await;
        if let Some(kept) = &*slot
            && stale.is_none_or(|s| !Arc::ptr_eq(s, kept))
        {
            return Ok(kept.clone());
        }
        lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fresh: Addrs = tokio::net::lookup_host((host, port)).await?.collect();
        if fresh.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} resolves to no address"),
            ));
        }
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// How many times `host` was looked up (for tests).
    #[cfg(test)]
    fn lookups(&self, host: &str, port: u16) -> u32 {
        let names = self.names.lock().unwrap();
        names
            .iter()
            .find(|n| n.port == port && n.host == host)
            .map_or(0, |n| n.lookups.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// The first of `addrs` that accepts, or the last error.
async fn first_that_connects(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_name_is_looked_up_once_and_again_when_its_addresses_fail() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = Arc::new(Resolver::default());
        // Many first connections at once: one lookup. `localhost` may resolve to ::1
        // first, where nothing listens: the next address is tried.
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let r = r.clone();
                tokio::spawn(async move { r.connect("localhost", port).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().expect("localhost reaches 127.0.0.1");
        }
        assert_eq!(r.lookups("localhost", port), 1);
        r.connect("localhost", port).await.unwrap();
        assert_eq!(r.lookups("localhost", port), 1, "kept");

        // The kept addresses stop working (the service moved): looked up again.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        {
            let names = r.names.lock().unwrap();
            *names[0].addrs.try_lock().unwrap() = Some(Arc::from(vec![dead_addr]));
        }
        r.connect("localhost", port).await.unwrap();
        assert_eq!(r.lookups("localhost", port), 2);

        // IP addresses are not looked up. (No test of an unknown name: that would ask
        // a DNS server off this machine.)
        r.connect("127.0.0.1", port).await.unwrap();
        assert_eq!(r.lookups("127.0.0.1", port), 0);
    }
}
