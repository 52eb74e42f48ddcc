//! `rediss://` against a TLS-enabled `redis-server` (certificates made here with `openssl`),
//! with a password, trusting a private CA. Runs with `--features tls`.

#[path = "support/redis_server.rs"]
mod redis_server;

use cachette::{Cache, Options};
use redis_server::RedisServer;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl not found: install it with `apt-get install openssl`");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_private_ca_and_password() {
    let dir = std::env::temp_dir().join(format!("cachette-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=cachette test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.cnf",
            "-out",
            "server.crt",
        ],
    );

    let tls_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (cert, key, ca) = (path("server.crt"), path("server.key"), path("ca.crt"));
    let server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "tls-secret",
    ]);
    let ca_pem = std::fs::read(dir.join("ca.crt")).unwrap();
    let url = format!("rediss://:tls-secret@127.0.0.1:{tls_port}/");
    let cache = Cache::builder()
        .redis(&url)
        .tls_root_certificate(ca_pem.clone())
        .build()
        .unwrap();
    cache.connect().await.expect("TLS handshake, then AUTH");
    let opts = Options::new().tags(["users"]);
    let v: u32 = cache.get_or_compute("k", &opts, || async { 1 }).await;
    let w: u32 = cache.get_or_compute("k", &opts, || async { 2 }).await;
    assert_eq!((v, w), (1, 1), "cached over TLS");
    let raw: Option<String> = server.cmd(&["GET", "cachette:k"]);
    assert!(raw.unwrap().contains("\"value\":1"));
    assert!(!format!("{cache:?}").contains("tls-secret"));

    // A server certificate the client does not trust is a connection error, not a panic.
    let untrusted = Cache::redis(&url).unwrap();
    assert!(untrusted.connect().await.is_err());
    let v: u32 = untrusted.get_or_compute("k2", &opts, || async { 3 }).await;
    assert_eq!(v, 3, "computed, not failed");
    // A wrong password over TLS is a clear error.
    let wrong = Cache::builder()
        .redis(format!("rediss://:nope@127.0.0.1:{tls_port}/"))
        .tls_root_certificate(ca_pem)
        .build()
        .unwrap();
    assert!(matches!(
        wrong.connect().await,
        Err(cachette::Error::Auth { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rediss_without_tls_root_for_plain_url_is_rejected() {
    let err = Cache::builder()
        .redis("redis://127.0.0.1:1/")
        .tls_root_certificate(b"pem".to_vec())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not rediss://"), "{err}");
}
