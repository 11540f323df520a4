//! Authentication against the real server started with `--auth --keyFile`: SCRAM-SHA-1 and
//! SCRAM-SHA-256 (negotiated and explicit), SASLprep'd names and passwords, `authSource`, and
//! the error a wrong password gives (naming user and mechanism, never the password).

mod common;

use bson::rawdoc;
use mongowire::Error;
use mongowire::driver::Client;

/// Creates the test users through the admin user of the auth URI, once per process; a user
/// left by an earlier run is updated to the same password and mechanisms instead.
async fn setup(admin_uri: &str) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let admin = Client::connect(admin_uri).await.unwrap();
        let db = admin.database("mwauth");
        let users = [
            ("sha1only", "pw-sha1", vec!["SCRAM-SHA-1"]),
            ("sha256only", "pw-sha256", vec!["SCRAM-SHA-256"]),
            ("both", "pw-both", vec!["SCRAM-SHA-1", "SCRAM-SHA-256"]),
            ("IX", "IX", vec!["SCRAM-SHA-256"]),
            ("\u{2168}", "\u{2163}", vec!["SCRAM-SHA-256"]),
        ];
        for (user, password, mechanisms) in users {
            let mechanisms: bson::RawArrayBuf = mechanisms.into_iter().collect();
            let roles = rawdoc! { "role": "readWrite", "db": "mwauth" };
            let create = rawdoc! {
                "createUser": user, "pwd": password, "roles": [roles.clone()], "mechanisms": mechanisms.clone(),
            };
            if let Err(error) = db.run_command(create).await {
                assert_eq!(error.as_server_error().map(|e| e.code), Some(USER_EXISTS), "{error}");
                let update =
                    rawdoc! { "updateUser": user, "pwd": password, "roles": [roles], "mechanisms": mechanisms };
                db.run_command(update).await.unwrap();
            }
        }
    })
    .await;
}

/// The server's code for createUser on an existing user.
const USER_EXISTS: i32 = 51003;

fn user_uri(user: &str, password: &str, extra: &str) -> String {
    let user = percent(user);
    let password = percent(password);
    format!("mongodb://{user}:{password}@127.0.0.1:27104/mwauth?replicaSet=mwauth{extra}")
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn works(uri: &str) -> Result<(), Error> {
    let client = Client::connect(uri).await?;
    let coll = client.database("mwauth").collection("probe");
    coll.insert_one(rawdoc! { "ok": true }).await?;
    client.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn scram_mechanisms_negotiated_and_explicit() {
    let Some(admin_uri) = common::auth() else { return };
    setup(&admin_uri).await;
    works(&user_uri("sha1only", "pw-sha1", "")).await.unwrap();
    works(&user_uri("sha1only", "pw-sha1", "&authMechanism=SCRAM-SHA-1"))
        .await
        .unwrap();
    works(&user_uri("sha256only", "pw-sha256", "")).await.unwrap();
    works(&user_uri("both", "pw-both", "&authMechanism=SCRAM-SHA-1"))
        .await
        .unwrap();
    works(&user_uri("both", "pw-both", "&authMechanism=SCRAM-SHA-256"))
        .await
        .unwrap();
    // The admin user authenticates against admin through authSource.
    works(&admin_uri).await.unwrap_or_else(|e| panic!("{e}"));
    let wrong_mechanism = works(&user_uri("sha256only", "pw-sha256", "&authMechanism=SCRAM-SHA-1"))
        .await
        .unwrap_err();
    assert!(matches!(wrong_mechanism, Error::Authentication(_)), "{wrong_mechanism}");
}

#[tokio::test]
async fn saslprep_normalises_names_and_passwords() {
    let Some(admin_uri) = common::auth() else { return };
    setup(&admin_uri).await;
    // "I\u{00AD}X": the soft hyphen is mapped to nothing.
    works(&user_uri("IX", "I\u{00AD}X", "&authMechanism=SCRAM-SHA-256"))
        .await
        .unwrap();
    // Roman numerals are compatibility characters: NFKC turns them into ASCII.
    works(&user_uri("\u{2168}", "IV", "&authMechanism=SCRAM-SHA-256"))
        .await
        .unwrap();
    works(&user_uri("\u{2168}", "I\u{00AD}V", "&authMechanism=SCRAM-SHA-256"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_wrong_password_names_user_and_mechanism_but_not_the_password() {
    let Some(admin_uri) = common::auth() else { return };
    setup(&admin_uri).await;
    for mechanism in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let uri = user_uri("both", "not-the-Password-42", &format!("&authMechanism={mechanism}"));
        let error = works(&uri).await.unwrap_err();
        let text = error.to_string();
        match &error {
            Error::Authentication(auth) => {
                assert_eq!(auth.user, "both");
                assert_eq!(auth.mechanism, mechanism);
                assert_eq!(auth.source_db, "mwauth");
                assert_eq!(auth.server_error.as_ref().map(|e| e.code), Some(18), "{text}");
            }
            other => panic!("expected an authentication error, got {other}"),
        }
        assert!(text.contains("\"both\"") && text.contains(mechanism), "{text}");
        assert!(!text.contains("not-the-Password-42") && !format!("{error:?}").contains("not-the-Password-42"));
    }
}

#[tokio::test]
async fn unauthenticated_clients_are_refused() {
    let Some(_) = common::auth() else { return };
    let client = Client::connect("mongodb://127.0.0.1:27104/?replicaSet=mwauth")
        .await
        .unwrap();
    let error = client
        .database("mwauth")
        .collection("probe")
        .insert_one(rawdoc! {})
        .await
        .unwrap_err();
    assert_eq!(
        error.as_server_error().map(|e| e.code_name.as_str()),
        Some("Unauthorized"),
        "{error}"
    );
}
