//! Connection strings as PostgreSQL users write them, against real private
//! clusters: URLs (an empty host with `?host=/socket/dir`, the OS user by
//! peer authentication), key=value conninfo, the `PG*` variables,
//! `~/.pgpass` and `PGPASSFILE`, and TLS up to `verify-full` with client
//! certificates. Passwords never show in what sluice prints.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::json;
use sluice::pgcluster::{ClusterSetup, PgCluster};
use sqlx::Connection as _;

use crate::support::pg::{Sluice, demo_database, os_user, private_cluster};
use crate::support::{structured, text_of};

/// The password of the role `app`: a space and a quote, so that every form
/// has to quote or encode it.
const APP_PASSWORD: &str = "a b'c";

/// Starts `sluice` and runs a query through it: the server, and the role
/// and database the query ran as (its pool keeps the connection open).
async fn connected(sluice: Sluice) -> (crate::support::Server, (String, String)) {
    let (server, _log) = sluice.start().await;
    let r = server
        .call(
            "query",
            json!({"sql": "SELECT current_user AS who, current_database() AS db"}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    let row = &structured(&r)["rows"][0];
    let answer = (
        row["who"].as_str().unwrap_or_default().to_string(),
        row["db"].as_str().unwrap_or_default().to_string(),
    );
    (server, answer)
}

/// The role and database a query through `sluice` ran as.
async fn who(sluice: Sluice) -> (String, String) {
    let (server, answer) = connected(sluice).await;
    server.shutdown().await;
    answer
}

/// What the server knows of `user`'s sessions: whether any came over TCP
/// (a client address) and whether all of them use TLS, and their
/// application names. Asked while sluice's pool holds them.
async fn sessions_of(cluster: &PgCluster, user: &str) -> Vec<(bool, bool, String)> {
    let mut conn = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("connecting as the superuser");
    let rows: Vec<(bool, bool, String)> = sqlx::query_as(
        "SELECT a.client_addr IS NOT NULL, coalesce(s.ssl, false), a.application_name \
         FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s USING (pid) WHERE a.usename = $1",
    )
    .bind(user)
    .fetch_all(&mut conn)
    .await
    .expect("reading pg_stat_activity");
    let _ = conn.close().await;
    rows
}

fn write_private(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A cluster where `app` logs in with a password over the socket and TCP,
/// and every other role by peer authentication over the socket.
async fn password_and_peer_cluster() -> Option<PgCluster> {
    let setup = ClusterSetup {
        hba: Some(
            "local all postgres trust\n\
             local all app scram-sha-256\n\
             local all all peer\n\
             host all postgres 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
                .into(),
        ),
        ..ClusterSetup::default()
    };
    let cluster = private_cluster(&setup).await?;
    demo_database(&cluster, "shop").await;
    cluster
        .execute(&format!(
            "CREATE ROLE app LOGIN PASSWORD '{}'",
            APP_PASSWORD.replace('\'', "''")
        ))
        .await
        .expect("creating the role app");
    Some(cluster)
}

#[tokio::test]
async fn unix_socket_forms_peer_auth_pg_variables_and_pgpass() {
    let Some(cluster) = password_and_peer_cluster().await else {
        return;
    };
    let Some(sock) = cluster.socket_dir().map(Path::to_path_buf) else {
        eprintln!("skipped: the cluster's data directory is unfit for a Unix socket");
        return;
    };
    let sock = sock.to_str().expect("a plain socket path").to_string();
    let port = cluster.port().to_string();

    // postgresql:///shop as the OS user (peer), the socket from PGHOST.
    match os_user() {
        Some(me) => {
            if me != "postgres" {
                cluster
                    .execute(&format!("CREATE ROLE \"{me}\" LOGIN"))
                    .await
                    .expect("creating a role for the OS user");
            }
            let home = tempfile::tempdir().unwrap();
            let sluice = Sluice::serve("", home.path())
                .database_url("postgresql:///shop")
                .env("PGHOST", &sock)
                .env("PGPORT", &port);
            let (server, answer) = connected(sluice).await;
            assert_eq!(answer, (me.clone(), "shop".into()));
            let sessions = sessions_of(&cluster, &me).await;
            assert!(!sessions.is_empty());
            assert!(sessions.iter().all(|(tcp, ..)| !tcp), "{sessions:?}");
            server.shutdown().await;
        }
        None => eprintln!("skipped the peer check: the OS user's name is unknown"),
    }

    // An empty host with ?host=/socket/dir, the password from PGPASSFILE
    // (whose host field is the socket directory, as libpq matches it).
    let home = tempfile::tempdir().unwrap();
    let passfile = home.path().join("passfile");
    write_private(
        &passfile,
        &format!("{sock}:{port}:shop:app:{APP_PASSWORD}\n"),
    );
    let sluice = Sluice::serve("", home.path())
        .database_url(&format!("postgresql://app@/shop?host={sock}&port={port}"))
        .env("PGPASSFILE", &passfile);
    assert_eq!(who(sluice).await, ("app".into(), "shop".into()));

    // key=value, with the password quoted and its quote escaped.
    let home = tempfile::tempdir().unwrap();
    let conninfo = format!(
        "host={sock} port={port} dbname=shop user=app password='a b\\'c' application_name=kv"
    );
    let (server, answer) = connected(Sluice::serve("", home.path()).database_url(&conninfo)).await;
    assert_eq!(answer, ("app".into(), "shop".into()));
    let sessions = sessions_of(&cluster, "app").await;
    assert!(!sessions.is_empty());
    assert!(
        sessions.iter().all(|(tcp, _, name)| !tcp && name == "kv"),
        "{sessions:?}"
    );
    server.shutdown().await;

    // No connection string at all: the PG* variables, the password from
    // ~/.pgpass.
    let home = tempfile::tempdir().unwrap();
    write_private(
        &home.path().join(".pgpass"),
        &format!("# comment\n*:*:other:app:wrong\n*:{port}:shop:app:{APP_PASSWORD}\n"),
    );
    let sluice = Sluice::serve("", home.path())
        .env("PGHOST", &sock)
        .env("PGPORT", &port)
        .env("PGDATABASE", "shop")
        .env("PGUSER", "app");
    assert_eq!(who(sluice).await, ("app".into(), "shop".into()));

    // A ~/.pgpass others can read is ignored, as libpq does.
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(&pgpass, format!("*:*:*:app:{APP_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, log, _) = Sluice::serve("", home.path())
        .database_url(&format!("host={sock} port={port} dbname=shop user=app"))
        .run_to_exit()
        .await;
    assert!(!status.success());
    assert!(log.contains("database unreachable: "), "{log}");
    assert!(log.contains("password"), "{log}");
    assert!(log.contains(".pgpass"), "{log}");

    cluster.stop().await.expect("stopping the cluster");
}

#[tokio::test]
async fn tcp_forms_fill_in_from_pg_variables_and_never_show_a_password() {
    let Some(cluster) = password_and_peer_cluster().await else {
        return;
    };
    let port = cluster.port().to_string();

    // A URL with an encoded password.
    let home = tempfile::tempdir().unwrap();
    let url = format!("postgresql://app:a%20b%27c@127.0.0.1:{port}/shop");
    let (server, answer) = connected(Sluice::serve("", home.path()).database_url(&url)).await;
    assert_eq!(answer, ("app".into(), "shop".into()));
    let sessions = sessions_of(&cluster, "app").await;
    assert!(!sessions.is_empty());
    assert!(
        sessions
            .iter()
            .all(|(tcp, _, name)| *tcp && name == "sluice"),
        "{sessions:?}"
    );
    server.shutdown().await;

    // key=value from DATABASE_URL.
    let home = tempfile::tempdir().unwrap();
    let sluice = Sluice::serve("", home.path()).env(
        "DATABASE_URL",
        format!("host=127.0.0.1 port={port} dbname = shop user=app password='a b\\'c'"),
    );
    assert_eq!(who(sluice).await, ("app".into(), "shop".into()));

    // key=value from [database] url in the config file.
    let home = tempfile::tempdir().unwrap();
    let config =
        format!("[database]\nurl = \"hostaddr=127.0.0.1 port={port} dbname=shop user=app\"\n");
    let sluice = Sluice::serve(&config, home.path()).env("PGPASSWORD", APP_PASSWORD);
    assert_eq!(who(sluice).await, ("app".into(), "shop".into()));

    // The seed's DB_* variables: PGPORT and PGUSER win over the seed's
    // defaults for what they leave out.
    let home = tempfile::tempdir().unwrap();
    let sluice = Sluice::serve("", home.path())
        .env("DB_HOST", "127.0.0.1")
        .env("DB_NAME", "shop")
        .env("PGPORT", &port)
        .env("PGUSER", "app")
        .env("PGPASSWORD", APP_PASSWORD);
    assert_eq!(who(sluice).await, ("app".into(), "shop".into()));

    // The URL leaves out the port, the user and the password: PG* fill
    // them in, and the URL's database wins over PGDATABASE.
    let home = tempfile::tempdir().unwrap();
    let sluice = Sluice::serve("", home.path())
        .database_url("postgres://127.0.0.1/shop")
        .env("PGPORT", &port)
        .env("PGUSER", "app")
        .env("PGPASSWORD", APP_PASSWORD)
        .env("PGDATABASE", "postgres")
        .env("PGAPPNAME", "from-env");
    let (server, answer) = connected(sluice).await;
    assert_eq!(answer, ("app".into(), "shop".into()));
    let sessions = sessions_of(&cluster, "app").await;
    assert!(
        sessions.iter().all(|(_, _, name)| name == "from-env"),
        "{sessions:?}"
    );
    server.shutdown().await;

    // A wrong password: the cause is named, the password is not, in any
    // form it was given in.
    for (given, secret) in [
        (
            format!("postgresql://app:WrongS3cret@127.0.0.1:{port}/shop"),
            "WrongS3cret",
        ),
        (
            format!("postgresql://app@127.0.0.1:{port}/shop?password=WrongS3cret"),
            "WrongS3cret",
        ),
        (
            format!("host=127.0.0.1 port={port} user=app dbname=shop password='Wrong S3cret'"),
            "S3cret",
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        let (status, log, _) = Sluice::serve("", home.path())
            .database_url(&given)
            .run_to_exit()
            .await;
        assert!(!status.success(), "{given}");
        assert!(log.contains("database unreachable: "), "{log}");
        assert!(log.contains("password authentication failed"), "{log}");
        assert!(log.contains("127.0.0.1"), "{log}");
        assert!(!log.contains(secret), "{log}");
    }

    // A host that does not exist.
    let home = tempfile::tempdir().unwrap();
    let (status, log, _) = Sluice::serve("", home.path())
        .database_url("postgresql://app:Sup3r@no-such-host.invalid/shop")
        .run_to_exit()
        .await;
    assert!(!status.success());
    assert!(log.contains("database unreachable: "), "{log}");
    assert!(log.contains("no-such-host.invalid"), "{log}");
    assert!(!log.contains("Sup3r"), "{log}");

    cluster.stop().await.expect("stopping the cluster");
}

#[tokio::test]
async fn no_database_at_all_names_the_pg_variables() {
    let home = tempfile::tempdir().unwrap();
    // PGUSER alone does not choose a database.
    let (status, log, _) = Sluice::serve("", home.path())
        .env("PGUSER", "app")
        .run_to_exit()
        .await;
    assert!(!status.success());
    assert!(log.contains("no database configured"), "{log}");
    assert!(log.contains("PGHOST"), "{log}");
    assert!(log.contains("PGDATABASE"), "{log}");
}

/// A CA, a server certificate for `localhost` (not for 127.0.0.1) and a
/// client certificate for the role `certuser`, all as PEM.
struct Pki {
    ca: String,
    other_ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }
    let issuer = ca("sluice test CA");
    let other = ca("sluice other CA");
    let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["localhost".into()],
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) =
        leaf(Vec::new(), "certuser", ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: issuer.pem(),
        other_ca: other.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

#[tokio::test]
async fn tls_up_to_verify_full_with_client_certificates() {
    let pki = pki();
    let setup = ClusterSetup {
        settings: vec![
            "ssl = on".into(),
            "ssl_cert_file = 'server.crt'".into(),
            "ssl_key_file = 'server.key'".into(),
            "ssl_ca_file = 'ca.crt'".into(),
        ],
        // Without TLS only the superuser gets in.
        hba: Some(
            "local all postgres trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             hostssl all app 127.0.0.1/32 scram-sha-256\n\
             hostssl all certuser 127.0.0.1/32 cert\n"
                .into(),
        ),
        files: vec![
            ("server.crt".into(), pki.server_cert.clone().into_bytes()),
            ("server.key".into(), pki.server_key.clone().into_bytes()),
            ("ca.crt".into(), pki.ca.clone().into_bytes()),
        ],
    };
    let Some(cluster) = private_cluster(&setup).await else {
        return;
    };
    demo_database(&cluster, "shop").await;
    cluster
        .execute(&format!(
            "CREATE ROLE app LOGIN PASSWORD '{}'; CREATE ROLE certuser LOGIN",
            APP_PASSWORD.replace('\'', "''")
        ))
        .await
        .expect("creating the roles");
    let port = cluster.port();
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, pem: &str| -> PathBuf {
        let path = files.path().join(name);
        write_private(&path, pem);
        path
    };
    let ca = file("ca.crt", &pki.ca);
    let other_ca = file("other-ca.crt", &pki.other_ca);
    let client_cert = file("client.crt", &pki.client_cert);
    let client_key = file("client.key", &pki.client_key);
    let (ca, other_ca) = (ca.display(), other_ca.display());
    let (client_cert, client_key) = (client_cert.display(), client_key.display());

    // verify-full with the right CA and the certificate's host name.
    let home = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql://app:a%20b%27c@localhost:{port}/shop?sslmode=verify-full&sslrootcert={ca}"
    );
    let (server, answer) = connected(Sluice::serve("", home.path()).database_url(&url)).await;
    assert_eq!(answer, ("app".into(), "shop".into()));
    let sessions = sessions_of(&cluster, "app").await;
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|(_, tls, _)| *tls), "{sessions:?}");
    server.shutdown().await;

    // verify-ca checks the CA but not the name.
    let home = tempfile::tempdir().unwrap();
    let sluice = Sluice::serve("", home.path()).database_url(&format!(
        "host=127.0.0.1 port={port} dbname=shop user=app password='a b\\'c' \
         sslmode=verify-ca sslrootcert='{ca}'"
    ));
    assert_eq!(who(sluice).await, ("app".into(), "shop".into()));

    // Refused: another CA; a name the certificate does not have; no TLS.
    for (given, expect) in [
        (
            format!(
                "postgresql://app:a%20b%27c@localhost:{port}/shop?sslmode=verify-full&sslrootcert={other_ca}"
            ),
            "certificate",
        ),
        (
            format!(
                "postgresql://app:a%20b%27c@127.0.0.1:{port}/shop?sslmode=verify-full&sslrootcert={ca}"
            ),
            "certificate",
        ),
        (
            format!("postgresql://app:a%20b%27c@localhost:{port}/shop?sslmode=disable"),
            "no encryption",
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        let (status, log, _) = Sluice::serve("", home.path())
            .database_url(&given)
            .run_to_exit()
            .await;
        assert!(!status.success(), "{given}");
        assert!(log.contains("database unreachable: "), "{given}: {log}");
        assert!(log.contains(expect), "{given}: {log}");
        assert!(!log.contains("a%20b%27c"), "{log}");
    }

    // A client certificate where the server requires one (pg_hba `cert`):
    // given in key=value form...
    let home = tempfile::tempdir().unwrap();
    let sluice = Sluice::serve("", home.path()).database_url(&format!(
        "host=localhost port={port} dbname=shop user=certuser sslmode=verify-full \
         sslrootcert={ca} sslcert={client_cert} sslkey={client_key}"
    ));
    assert_eq!(who(sluice).await, ("certuser".into(), "shop".into()));

    // ... through the PG* variables ...
    let home = tempfile::tempdir().unwrap();
    let sluice = Sluice::serve("", home.path())
        .database_url(&format!("postgresql://certuser@localhost:{port}/shop"))
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", ca.to_string())
        .env("PGSSLCERT", client_cert.to_string())
        .env("PGSSLKEY", client_key.to_string());
    assert_eq!(who(sluice).await, ("certuser".into(), "shop".into()));

    // ... and from ~/.postgresql, libpq's default place for them.
    let home = tempfile::tempdir().unwrap();
    let dot = home.path().join(".postgresql");
    std::fs::create_dir(&dot).unwrap();
    write_private(&dot.join("root.crt"), &pki.ca);
    write_private(&dot.join("postgresql.crt"), &pki.client_cert);
    write_private(&dot.join("postgresql.key"), &pki.client_key);
    let sluice = Sluice::serve("", home.path()).database_url(&format!(
        "postgresql://certuser@localhost:{port}/shop?sslmode=verify-full"
    ));
    assert_eq!(who(sluice).await, ("certuser".into(), "shop".into()));

    // Without one, the server refuses.
    let home = tempfile::tempdir().unwrap();
    let (status, log, _) = Sluice::serve("", home.path())
        .database_url(&format!(
            "postgresql://certuser@localhost:{port}/shop?sslmode=verify-full&sslrootcert={ca}"
        ))
        .run_to_exit()
        .await;
    assert!(!status.success());
    assert!(log.contains("database unreachable: "), "{log}");
    assert!(log.contains("certificate"), "{log}");

    cluster.stop().await.expect("stopping the cluster");
}
