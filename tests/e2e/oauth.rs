//! OAuth 2.1 callers against a real authorization server (npm's
//! `oidc-provider`, see `support::oidc`): valid tokens reach PostgreSQL as
//! their caller (role, `sluice.*` settings, audit), every kind of bad token
//! gets its documented 401 or 403 before anything runs, the issuer's key
//! rotation is followed, and row-level security on `sluice.subject` shows
//! each caller only its own rows.

use crate::support::oidc::{OidcClient, OidcProvider, Options};
use crate::support::{
    HttpServer, ServerLog, TestDb, free_port, fresh_db, http_client, needed_here, run_sql,
    spawn_http_logged, spawn_http_logged_at, structured, text_of,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// The resource URL sluice is configured with, as if behind a proxy that
/// terminates TLS: tokens name it as their audience.
const RESOURCE: &str = "https://sluice.test/mcp";
const METADATA_URL: &str = "https://sluice.test/.well-known/oauth-protected-resource/mcp";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// alice and bob are analysts; carol is in sales, which no rule admits.
fn clients() -> Vec<OidcClient> {
    vec![
        OidcClient::new(
            "alice",
            json!({"groups": ["analysts"], "email": "alice@example.com"}),
        ),
        OidcClient::new(
            "bob",
            json!({"groups": ["staff", "analysts"], "email": "bob@example.com"}),
        ),
        OidcClient::new("carol", json!({"groups": ["sales"]})),
        // sluice's own client, for token introspection.
        OidcClient::new("sluice", json!({})),
    ]
}

/// A provider for [`RESOURCE`] with the scopes `sql` and `other`, and a
/// sluice that accepts its tokens (scope `sql` required, analysts only, as
/// the role `<db>_analyst`) beside its API key. The roles exist; `notes`
/// holds a row-level security policy on `sluice.subject`.
struct Setup {
    provider: OidcProvider,
    server: HttpServer,
    log: ServerLog,
    analyst: String,
    _db: TestDb,
}

async fn setup() -> Option<Setup> {
    setup_with(Options::default(), "").await
}

/// As [`setup`], with the provider's `options` and `oauth` added to
/// `[http.oauth]`.
async fn setup_with(options: Options, oauth: &str) -> Option<Setup> {
    setup_at(options, oauth, RESOURCE, "127.0.0.1:0").await
}

/// As [`setup_with`], for sluice at `resource`, listening on `addr`.
async fn setup_at(options: Options, oauth: &str, resource: &str, addr: &str) -> Option<Setup> {
    let provider =
        OidcProvider::start_with(resource, &["sql", "other"], clients(), options).await?;
    let db = fresh_db().await;
    let analyst = format!("{}_analyst", db.name);
    let plugin_role = format!("{}_plugin", db.name);
    run_sql(
        &db.url,
        &format!(
            "CREATE ROLE \"{analyst}\" NOLOGIN; CREATE ROLE \"{plugin_role}\" NOLOGIN; \
             CREATE TABLE notes (owner text NOT NULL, body text NOT NULL); \
             INSERT INTO notes VALUES ('alice', 'alice 1'), ('alice', 'alice 2'), \
                                      ('bob', 'bob 1'), ('carol', 'carol 1'); \
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY; \
             CREATE POLICY own_notes ON notes \
                 USING (owner = current_setting('sluice.subject', true)); \
             GRANT USAGE ON SCHEMA public TO \"{analyst}\", \"{plugin_role}\"; \
             GRANT SELECT ON notes, books TO \"{analyst}\", \"{plugin_role}\";"
        ),
    )
    .await;
    let config = format!(
        "[plugins.grants.sql-read]\nread = [\"public.notes\"]\nrole = \"{plugin_role}\"\n\n\
         [http.failed_auth]\nper_minute = 1000\nburst = 1000\n\n\
         [http.oauth]\nissuer = \"{issuer}\"\nresource = \"{resource}\"\nscopes = [\"sql\"]\n\
         jwks_refresh_s = 1\n{oauth}\n\
         [http.oauth.claims]\nemail = \"email\"\ngroups = \"groups\"\n\n\
         [[http.oauth.rules]]\nclaims = {{ groups = \"analysts\" }}\nplugins = [\"sql-read\"]\n\
         role = \"{analyst}\"\n",
        issuer = provider.issuer,
    );
    let (server, log) = spawn_http_logged_at(&db.url, &config, "", addr).await;
    Some(Setup {
        provider,
        server,
        log,
        analyst,
        _db: db,
    })
}

/// A `query` call made with `token`, in a session of its own.
async fn query_as(server: &HttpServer, token: &str, sql: &str) -> CallToolResult {
    let client = server.client(token).await;
    let result = client
        .call_tool(
            CallToolRequestParams::new("query")
                .with_arguments(json!({"sql": sql}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    client.cancel().await.unwrap();
    result
}

/// The structured rows of a `query` call made with `token`.
async fn rows_as(server: &HttpServer, token: &str, sql: &str) -> Value {
    let result = query_as(server, token, sql).await;
    assert_ne!(result.is_error, Some(true), "{sql}: {}", text_of(&result));
    structured(&result)["rows"].clone()
}

/// The text of a `query` call's error, made with `token`.
async fn refusal_as(server: &HttpServer, token: &str, sql: &str) -> String {
    let result = query_as(server, token, sql).await;
    assert_eq!(result.is_error, Some(true), "{sql} was not refused");
    text_of(&result)
}

/// An MCP initialize posted with `token`: the status and the
/// `WWW-Authenticate` challenge.
async fn initialize_with(server: &HttpServer, token: Option<&str>) -> (u16, String) {
    let mut request = http_client()
        .post(format!("{}/mcp", server.base))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "oauth-test", "version": "1"}}})
            .to_string(),
        );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

/// A token signed with the provider's own key (or `pem` instead), with
/// `claims` over a valid set for alice.
fn forge(setup: &Setup, header: Header, claims: Value, pem: Option<&str>) -> String {
    let mut all = json!({
        "iss": setup.provider.issuer, "aud": RESOURCE, "sub": "alice",
        "scope": "sql", "groups": ["analysts"],
        "iat": now(), "exp": now() + 300,
    });
    for (key, value) in claims.as_object().unwrap() {
        if value.is_null() {
            all.as_object_mut().unwrap().remove(key);
        } else {
            all[key] = value.clone();
        }
    }
    let pem = pem.unwrap_or(&setup.provider.key().private_pem);
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &all, &key).unwrap()
}

fn es256(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    header.typ = Some("at+jwt".into());
    header
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_valid_token_reaches_postgres_as_its_caller_and_the_audit_names_it() {
    let Some(setup) = setup().await else { return };
    let token = setup.provider.token("alice", "sql").await;
    let rows = rows_as(
        &setup.server,
        &token,
        "SELECT current_user AS who, current_setting('sluice.subject') AS subject, \
                current_setting('sluice.issuer') AS issuer, \
                current_setting('sluice.key_id') AS key_id, \
                current_setting('sluice.claim.email') AS email, \
                current_setting('sluice.claim.groups')::jsonb @> '[\"analysts\"]' AS analyst",
    )
    .await;
    // The caller's role takes the place of the plugin's own.
    assert_eq!(
        rows,
        json!([{
            "who": setup.analyst, "subject": "alice", "issuer": setup.provider.issuer,
            "key_id": "", "email": "alice@example.com", "analyst": true,
        }])
    );
    // The plugin's grant still applies on top: books is not in it, though
    // the caller's role may read it.
    let refused = refusal_as(&setup.server, &token, "SELECT * FROM books").await;
    assert!(refused.contains("read-grant"), "{refused}");
    // The audit trail names the caller.
    let events = setup.log.lines_with("sluice::audit");
    assert!(!events.is_empty());
    for event in &events {
        assert!(event.contains("\"subject\":\"alice\""), "{event}");
        assert!(
            event.contains(&format!("\"issuer\":\"{}\"", setup.provider.issuer)),
            "{event}"
        );
    }

    // API keys keep working beside OAuth, named by their key id.
    let rows = rows_as(
        &setup.server,
        &setup.server.key,
        "SELECT current_setting('sluice.key_id') AS key_id, \
                current_setting('sluice.subject') AS subject",
    )
    .await;
    assert_eq!(rows, json!([{"key_id": "client", "subject": ""}]));
    assert!(
        setup
            .log
            .lines_with("\"key_id\":\"client\"")
            .iter()
            .any(|l| l.contains("sluice::audit"))
    );
}

#[tokio::test]
async fn bad_tokens_get_their_documented_answer_and_nothing_runs() {
    let Some(setup) = setup().await else { return };
    let kid = setup.provider.key().kid.clone();
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"at+jwt"}"#),
        base64url(
            json!({"iss": setup.provider.issuer, "aud": RESOURCE, "sub": "alice",
                   "scope": "sql", "groups": ["analysts"], "exp": now() + 300})
            .to_string()
            .as_bytes()
        )
    );
    // HS256 keyed with the issuer's public key, the classic confusion.
    let public_jwk = setup.provider.key().public_jwk.to_string();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &json!({"iss": setup.provider.issuer, "aud": RESOURCE, "sub": "alice",
                "scope": "sql", "groups": ["analysts"], "exp": now() + 300}),
        &EncodingKey::from_secret(public_jwk.as_bytes()).unwrap(),
    )
    .unwrap();
    let invalid: Vec<(&str, String)> = vec![
        (
            "expired",
            forge(
                &setup,
                es256(&kid),
                json!({"exp": now() - 600, "iat": now() - 900}),
                None,
            ),
        ),
        (
            "not yet valid",
            forge(&setup, es256(&kid), json!({"nbf": now() + 600}), None),
        ),
        (
            "wrong audience",
            forge(
                &setup,
                es256(&kid),
                json!({"aud": "https://other.test/mcp"}),
                None,
            ),
        ),
        (
            "no audience",
            forge(&setup, es256(&kid), json!({"aud": null}), None),
        ),
        (
            "wrong issuer",
            forge(
                &setup,
                es256(&kid),
                json!({"iss": "http://127.0.0.1:9"}),
                None,
            ),
        ),
        (
            "bad signature",
            forge(&setup, es256(&kid), json!({}), Some(&other_key)),
        ),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        (
            "unknown kid",
            forge(&setup, es256("not-a-key-of-the-issuer"), json!({}), None),
        ),
        ("garbage", "eyJ.eyJ.AAAA".to_string()),
        ("an unknown API key", "sluice_0000".to_string()),
    ];
    for (case, token) in &invalid {
        let (status, challenge) = initialize_with(&setup.server, Some(token)).await;
        assert_eq!(status, 401, "{case}");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains(&format!("resource_metadata=\"{METADATA_URL}\"")),
            "{case}: {challenge}"
        );
    }
    // The same forgery, signed right, passes: each case failed on its flaw.
    let (status, _) = initialize_with(
        &setup.server,
        Some(&forge(&setup, es256(&kid), json!({}), None)),
    )
    .await;
    assert_eq!(status, 200);

    // A real token without the required scope: 403, naming the scope.
    let token = setup.provider.token("alice", "other").await;
    let (status, challenge) = initialize_with(&setup.server, Some(&token)).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"sql\""),
        "{challenge}"
    );
    // A real token whose caller no rule admits: 403, and no scope to ask
    // for would change that.
    let token = setup.provider.token("carol", "sql").await;
    let (status, challenge) = initialize_with(&setup.server, Some(&token)).await;
    assert_eq!(status, 403);
    assert!(!challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains(METADATA_URL), "{challenge}");
    // No credentials at all: 401, pointing at the metadata.
    let (status, challenge) = initialize_with(&setup.server, None).await;
    assert_eq!(status, 401);
    assert!(challenge.contains(METADATA_URL), "{challenge}");

    // Nothing reached a plugin or the database.
    assert!(setup.log.lines_with("sluice::audit").is_empty());
}

#[tokio::test]
async fn the_issuers_key_rotation_is_followed_while_sluice_runs() {
    let Some(mut setup) = setup_with(Options::default(), "jwks_max_age_s = 2").await else {
        return;
    };
    let before = setup.provider.token("alice", "sql").await;
    let rows = rows_as(&setup.server, &before, "SELECT count(*) AS n FROM notes").await;
    assert_eq!(rows, json!([{"n": 2}]));

    // The issuer drops its key for a new one. Once sluice's key set is
    // older than jwks_max_age_s it is fetched again in the background, and
    // tokens signed by the dropped key are refused from then on.
    setup.provider.rotate().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut refused = false;
    for _ in 0..40 {
        if initialize_with(&setup.server, Some(&before)).await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "a token of the dropped key is still accepted");
    let after = setup.provider.token("bob", "sql").await;
    let rows = rows_as(&setup.server, &after, "SELECT count(*) AS n FROM notes").await;
    assert_eq!(rows, json!([{"n": 1}]));

    // A token signed by a key sluice has not seen fetches the key set at
    // once, as soon as jwks_refresh_s (1 s here) has passed since the last
    // fetch.
    setup.provider.rotate().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let newest = setup.provider.token("alice", "sql").await;
    let rows = rows_as(&setup.server, &newest, "SELECT count(*) AS n FROM notes").await;
    assert_eq!(rows, json!([{"n": 2}]));
    let (status, _) = initialize_with(&setup.server, Some(&after)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_protected_resource_metadata_tells_clients_where_to_sign_in() {
    let Some(setup) = setup().await else { return };
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = http_client()
            .get(format!("{}{path}", setup.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let metadata: Value = response.json().await.unwrap();
        assert_eq!(metadata["resource"], RESOURCE);
        assert_eq!(
            metadata["authorization_servers"],
            json!([setup.provider.issuer])
        );
        assert_eq!(metadata["scopes_supported"], json!(["sql"]));
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    }
}

/// The proof: one table, a row-level security policy on
/// `current_setting('sluice.subject')`, two callers of the same tool of the
/// same plugin, and each sees only its own rows, whatever SQL it tries.
#[tokio::test]
async fn row_level_security_shows_each_caller_only_their_own_rows() {
    let Some(setup) = setup().await else { return };
    let alice = setup.provider.token("alice", "sql").await;
    let bob = setup.provider.token("bob", "sql").await;
    let all = "SELECT owner, body FROM notes ORDER BY body";
    assert_eq!(
        rows_as(&setup.server, &alice, all).await,
        json!([{"owner": "alice", "body": "alice 1"}, {"owner": "alice", "body": "alice 2"}])
    );
    assert_eq!(
        rows_as(&setup.server, &bob, all).await,
        json!([{"owner": "bob", "body": "bob 1"}])
    );
    // SQL the policy lets through shows alice nothing of bob's.
    for sql in [
        "SELECT * FROM notes WHERE owner = 'bob'",
        "SELECT * FROM notes WHERE owner <> 'alice'",
        "SELECT * FROM public.notes n WHERE n.body LIKE 'bob%'",
        "SELECT * FROM (SELECT * FROM notes) s WHERE owner = 'bob'",
        "WITH x AS (SELECT * FROM notes) SELECT * FROM x WHERE owner = 'bob'",
    ] {
        assert_eq!(
            rows_as(&setup.server, &alice, sql).await,
            json!([]),
            "{sql}"
        );
    }
    assert_eq!(
        rows_as(&setup.server, &alice, "SELECT count(*) AS n FROM notes").await,
        json!([{"n": 2}])
    );
    // And no SQL changes who PostgreSQL thinks is asking.
    for sql in [
        "SELECT set_config('sluice.subject', 'bob', true)",
        "SELECT * FROM notes WHERE set_config('sluice.subject', 'bob', true) IS NOT NULL",
        "SELECT set_config('role', 'postgres', true)",
        "SET sluice.subject = 'bob'",
        "SET ROLE NONE",
        "RESET ROLE",
        "SELECT * FROM notes; SELECT set_config('sluice.subject', 'bob', false)",
    ] {
        let refused = refusal_as(&setup.server, &alice, sql).await;
        assert!(refused.contains("denied"), "{sql}: {refused}");
    }
    // The identity is the transaction's own: the next call is alice again.
    assert_eq!(
        rows_as(
            &setup.server,
            &alice,
            "SELECT current_setting('sluice.subject') AS s"
        )
        .await,
        json!([{"s": "alice"}])
    );
}

/// Opaque tokens, checked by the issuer's introspection endpoint: an active
/// one for this server reaches PostgreSQL as its caller (the client, when
/// the answer names no `sub`), anything else gets 401.
#[tokio::test]
async fn opaque_tokens_are_checked_by_introspection() {
    let options = Options {
        opaque: true,
        ..Options::default()
    };
    let introspection = "[http.oauth.introspection]\nclient_id = \"sluice\"\n\
                         client_secret = \"sluice-secret\"\n";
    let Some(setup) = setup_with(options, introspection).await else {
        return;
    };
    let alice = setup.provider.token("alice", "sql").await;
    assert!(!alice.contains('.'), "not an opaque token: {alice}");
    let all = "SELECT owner, current_setting('sluice.claim.email') AS email FROM notes";
    let rows = rows_as(&setup.server, &alice, all).await;
    assert_eq!(
        rows,
        json!([{"owner": "alice", "email": "alice@example.com"},
               {"owner": "alice", "email": "alice@example.com"}])
    );
    // Unknown to the issuer: inactive.
    let (status, challenge) = initialize_with(&setup.server, Some("0pAqUe-ToKeN-0000")).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // Active, but without the required scope.
    let other = setup.provider.token("alice", "other").await;
    let (status, challenge) = initialize_with(&setup.server, Some(&other)).await;
    assert_eq!(status, 403, "{challenge}");
    // Active, but its caller is admitted by no rule.
    let carol = setup.provider.token("carol", "sql").await;
    let (status, _) = initialize_with(&setup.server, Some(&carol)).await;
    assert_eq!(status, 403);
}

/// A role the login role cannot take is said at start, naming the config
/// entry; calls made as it fail with PostgreSQL's error, never as another
/// role.
#[tokio::test]
async fn a_role_that_cannot_be_taken_is_said_at_start_and_calls_fail() {
    let db = fresh_db().await;
    let missing = format!("{}_missing", db.name);
    let (server, log) = spawn_http_logged(&db.url, "", &format!("role = \"{missing}\"\n")).await;
    let warned = log.lines_with(&format!("[[http.auth.keys]] \"client\" role \"{missing}\""));
    assert!(
        warned.iter().any(|l| l.contains("does not exist")),
        "{warned:?}"
    );
    let refused = refusal_as(&server, &server.key, "SELECT 1 AS one").await;
    assert!(refused.contains(&missing), "{refused}");
}

/// An MCP host's sign-in, end to end: the official Python SDK's OAuth
/// client finds the authorization server through sluice's 401 and
/// protected-resource metadata, registers itself, signs its user in with
/// the authorization-code grant, PKCE and a resource indicator, and calls
/// the tool with the access token. Two people, two sets of rows.
#[tokio::test]
async fn the_python_sdk_signs_people_in_with_authorization_code_and_pkce() {
    let python_sdk = std::process::Command::new("python3")
        .args(["-c", "import mcp.client.auth"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !needed_here(
        python_sdk,
        "the MCP Python SDK",
        "pip install mcp==1.30.0",
        "the Python SDK sign-in test",
    ) {
        return;
    }
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let options = Options {
        accounts: json!({
            "alice": {"groups": ["analysts"], "email": "alice@example.com"},
            "bob": {"groups": ["analysts"], "email": "bob@example.com"},
        }),
        ..Options::default()
    };
    let Some(setup) = setup_at(options, "", &resource, &format!("127.0.0.1:{port}")).await else {
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/oidc/mcp_oauth_client.py"
    );
    let sql = "SELECT current_setting('sluice.subject') AS subject, \
               current_setting('sluice.claim.email') AS email, count(*) AS notes FROM notes";
    for (person, notes) in [("alice", 2), ("bob", 1)] {
        let run = tokio::process::Command::new("python3")
            .args([script, &resource, person, "sql", sql])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
            .await
            .expect("the Python client timed out")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{person}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            result["rows"],
            json!([{"subject": person, "email": format!("{person}@example.com"), "notes": notes}]),
            "{person}"
        );
        // The subject is the person, as the audit trail records it too.
        let audited = setup.log.lines_with(&format!("\"subject\":\"{person}\""));
        assert!(
            audited.iter().any(|l| l.contains("sluice::audit")),
            "{person}"
        );
    }
}
