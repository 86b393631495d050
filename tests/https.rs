//! https through rustls: a self-signed loopback server is refused by default (the
//! certificate cannot be verified) and accepted with `--insecure`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use servescope::client::{ClientConfig, HttpClient, init_tls};
use servescope::clock::RunClock;
use servescope::progress::Live;
use servescope::record::FailureKind;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const RESPONSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
data: {\"choices\":[{\"delta\":{\"content\":\"secure\"}}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\n\
data: [DONE]\n\n";

/// Serves the SSE response above over TLS to every connection.
async fn tls_server() -> std::net::SocketAddr {
    init_tls();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                common::read_request_async(&mut tls).await;
                let _ = tls.write_all(RESPONSE.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

async fn request(addr: std::net::SocketAddr, insecure: bool) -> servescope::client::Outcome {
    let client = HttpClient::new(&ClientConfig {
        api_key: None,
        timeout: Some(Duration::from_secs(10)),
        idle_timeout: None,
        retries: 0,
        insecure,
        drain_after_done: servescope::client::DRAIN_AFTER_DONE,
    })
    .unwrap();
    let url = format!("https://localhost:{}/v1/chat/completions", addr.port())
        .parse()
        .unwrap();
    client
        .execute(
            &url,
            b"{}".to_vec().into(),
            &RunClock::start(),
            &Live::default(),
        )
        .await
}

#[tokio::test]
async fn self_signed_certificate_needs_insecure() {
    let addr = tls_server().await;
    let refused = request(addr, false).await;
    let (kind, msg) = refused
        .failure
        .expect("an unverifiable certificate must be refused");
    assert_eq!(kind, FailureKind::ConnectError);
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");

    let ok = request(addr, true).await;
    assert!(ok.failure.is_none(), "{:?}", ok.failure);
    assert_eq!(ok.text, "secure");
    assert_eq!(ok.usage.unwrap().completion_tokens, Some(1));
}
