//! The half of `mongodb+srv://` that needs no network (Initial DNS Seedlist Discovery spec).
//!
//! The driver asks [`ConnectionString::srv_query_name`] what to look up, performs the SRV
//! query and the TXT query on [`ConnectionString::srv_host`], and hands both answers to
//! [`ConnectionString::apply_srv_records`], which checks them and rewrites the seed list and
//! options in place. Keeping that step here means every rule (which domains a target may be
//! in, which options a TXT record may set, what wins over what) is tested without DNS.

use std::hash::{BuildHasher, Hasher, RandomState};

use crate::protocol::ServerAddress;
use crate::{Error, Result};

use super::ConnectionString;
use super::credential::{self, Requested};
use super::options::{self, Collected, Origin};
use super::text::Source;

/// The service name queried when `srvServiceName` is not given.
const DEFAULT_SERVICE_NAME: &str = "mongodb";

impl ConnectionString {
    /// The host name of a `mongodb+srv://` string, lower-cased: the name whose TXT records
    /// hold default options. `None` for `mongodb://`.
    pub fn srv_host(&self) -> Option<&str> {
        self.srv.as_ref().map(|srv| srv.name.as_str())
    }

    /// The SRV query to make, `_{srvServiceName}._tcp.{host}` (the service defaults to
    /// `mongodb`). `None` for `mongodb://`.
    pub fn srv_query_name(&self) -> Option<String> {
        let srv = self.srv.as_ref()?;
        let service = self.options.srv_service_name.as_deref().unwrap_or(DEFAULT_SERVICE_NAME);
        Some(format!("_{service}._tcp.{}", srv.name))
    }

    /// Applies the answers to the SRV and TXT queries of a `mongodb+srv://` string, choosing
    /// `srvMaxHosts` of the targets at random when there are more.
    ///
    /// `targets` are the SRV records' `(target, port)` (priority and weight are ignored, as the
    /// spec requires). `txt_records` has one entry per TXT record, the record's strings
    /// concatenated in order; more than one record is an error.
    ///
    /// On success `hosts` is the seed list; `authSource`, `replicaSet` and `loadBalanced` from
    /// the TXT record apply where the connection string did not set them, and the credential's
    /// source follows. On error nothing changes.
    pub fn apply_srv_records(&mut self, targets: &[(String, u16)], txt_records: &[String]) -> Result<()> {
        self.apply_srv_records_with(targets, txt_records, random_below)
    }

    /// [`ConnectionString::apply_srv_records`] with the randomness supplied: `random_below(n)`
    /// returns an index in `0..n` (values beyond are wrapped), used for a Fisher-Yates choice
    /// of `srvMaxHosts` targets. Tests pass a fixed sequence.
    pub fn apply_srv_records_with(
        &mut self,
        targets: &[(String, u16)],
        txt_records: &[String],
        mut random_below: impl FnMut(usize) -> usize,
    ) -> Result<()> {
        let Some(srv) = &self.srv else {
            return Err(Error::usage(
                "apply_srv_records: this is a mongodb:// connection string, which has no SRV records",
            ));
        };
        if srv.resolved {
            return Err(Error::usage(
                "apply_srv_records: the SRV records of this connection string were already applied",
            ));
        }
        let host = srv.name.clone();
        let invalid = |problem: String| Error::usage(format!("invalid DNS records for {host}: {problem}"));

        let mut options = self.options.clone();
        let mut warnings = Vec::new();
        match txt_records {
            [] => {}
            [record] => {
                let source = Source::plain(record, format!("invalid TXT record for {host}"));
                let mut from_txt = Collected::default();
                for pair in options::split_query(&source, 0..record.len(), &mut from_txt.warnings)? {
                    from_txt.apply(&source, &pair, Origin::TxtRecord)?;
                }
                warnings.extend(
                    from_txt
                        .warnings
                        .into_iter()
                        .map(|warning| format!("TXT record for {host}: {warning}")),
                );
                // The connection string wins over the TXT record.
                let txt = from_txt.options;
                options.auth_source = options.auth_source.or(txt.auth_source);
                options.replica_set = options.replica_set.or(txt.replica_set);
                options.load_balanced = options.load_balanced.or(txt.load_balanced);
            }
            records => {
                return Err(invalid(format!(
                    "{} TXT records; at most one is allowed, as the order of options across \
                     records would be undefined",
                    records.len()
                )));
            }
        }
        options::validate_topology(&options).map_err(invalid)?;

        if targets.is_empty() {
            return Err(invalid(format!(
                "the SRV query {} returned no records, so there is no host to connect to",
                self.srv_query_name().unwrap_or_default()
            )));
        }
        let hosts = super::unique(
            targets
                .iter()
                .map(|(target, port)| validate_srv_target(&host, target, *port))
                .collect::<Result<Vec<_>>>()?
                .into_iter(),
        );
        if options.load_balanced == Some(true) && hosts.len() > 1 {
            return Err(invalid(format!(
                "loadBalanced=true needs exactly one host, but the SRV records name {}",
                hosts.len()
            )));
        }
        let hosts = choose(hosts, options.srv_max_hosts, &mut random_below);

        let credential = if options.auth_source == self.options.auth_source {
            self.credential.clone()
        } else {
            credential::resolve(
                self.credential.clone().map(Requested::from_credential),
                options.auth_source.as_deref(),
                self.default_database.as_deref(),
            )
            .map_err(|error| Error::usage(format!("{error} (authSource comes from the TXT record for {host})")))?
        };

        self.hosts = hosts;
        self.options = options;
        self.credential = credential;
        self.warnings.extend(warnings);
        if let Some(srv) = &mut self.srv {
            srv.resolved = true;
        }
        Ok(())
    }
}

/// Checks one SRV target of `srv_host` and returns its address; also what SRV polling needs
/// for each new answer.
///
/// A target must lie inside the SRV host's domain, so that whoever controls DNS answers for
/// one name cannot send clients to another domain. The domain is the host without its first
/// label when the host has three or more labels (`cluster0.example.com` gives `example.com`),
/// and the host itself otherwise (`localhost`, `mongo.local`). The target must end with a `.`
/// and that domain, so it has at least one label more. Names compare case-insensitively, and
/// one trailing dot (DNS's absolute form) is ignored.
pub fn validate_srv_target(srv_host: &str, target: &str, port: u16) -> Result<ServerAddress> {
    let srv_host = srv_host.strip_suffix('.').unwrap_or(srv_host).to_ascii_lowercase();
    let name = target.strip_suffix('.').unwrap_or(target).to_ascii_lowercase();
    let invalid = |problem: String| Error::usage(format!("invalid DNS records for {srv_host}: {problem}"));
    if name.is_empty()
        || name.split('.').any(str::is_empty)
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(format!("SRV target {target:?} is not a host name")));
    }
    if port == 0 {
        return Err(invalid(format!("SRV target {target:?} has port 0")));
    }
    let domain = if srv_host.split('.').count() >= 3 {
        srv_host.split_once('.').map_or(srv_host.as_str(), |(_, parent)| parent)
    } else {
        srv_host.as_str()
    };
    let inside = name
        .strip_suffix(domain)
        .and_then(|prefix| prefix.strip_suffix('.'))
        .is_some_and(|labels| !labels.is_empty());
    if !inside {
        return Err(invalid(format!(
            "SRV target {target:?} is outside the domain {domain:?}; targets of {srv_host:?} \
             must end with \".{domain}\""
        )));
    }
    Ok(ServerAddress::new(&name, port))
}

/// The first `max` hosts after a partial Fisher-Yates shuffle, or all of them when `max` is
/// absent, zero, or not smaller than their number.
fn choose(
    mut hosts: Vec<ServerAddress>,
    max: Option<u32>,
    random_below: &mut impl FnMut(usize) -> usize,
) -> Vec<ServerAddress> {
    let max = max.and_then(|max| usize::try_from(max).ok()).unwrap_or(0);
    if max == 0 || max >= hosts.len() {
        return hosts;
    }
    for chosen in 0..max {
        let remaining = hosts.len() - chosen;
        hosts.swap(chosen, chosen + random_below(remaining) % remaining);
    }
    hosts.truncate(max);
    hosts
}

/// A random index below `bound`, from the standard library's randomly keyed hasher: enough to
/// spread clients over mongos servers, which is all `srvMaxHosts` asks for, without a
/// random-number dependency.
fn random_below(bound: usize) -> usize {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_usize(bound);
    let bound = u64::try_from(bound).unwrap_or(u64::MAX).max(1);
    usize::try_from(hasher.finish() % bound).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::tests::{assert_err, ok};
    use super::*;
    use crate::protocol::AuthMechanism;

    const HOST: &str = "test1.test.build.10gen.cc";

    fn targets(names: &[(&str, u16)]) -> Vec<(String, u16)> {
        names.iter().map(|(name, port)| ((*name).to_owned(), *port)).collect()
    }

    fn two_targets() -> Vec<(String, u16)> {
        targets(&[
            ("localhost.test.build.10gen.cc.", 27017),
            ("localhost.test.build.10gen.cc.", 27018),
        ])
    }

    fn addresses(parsed: &ConnectionString) -> Vec<String> {
        parsed.hosts.iter().map(ToString::to_string).collect()
    }

    /// Parses `uri`, applies `txt` and the two targets, and returns the result or the message.
    fn resolve(uri: &str, txt: &[&str]) -> std::result::Result<ConnectionString, String> {
        let mut parsed = ok(uri);
        let txt: Vec<String> = txt.iter().map(|record| (*record).to_owned()).collect();
        parsed
            .apply_srv_records(&two_targets(), &txt)
            .map(|()| parsed)
            .map_err(|error| error.to_string())
    }

    fn resolve_err(uri: &str, txt: &[&str], fragment: &str) {
        let message = resolve(uri, txt)
            .err()
            .unwrap_or_else(|| panic!("{uri} {txt:?} resolved"));
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }

    #[test]
    fn query_names() {
        let parsed = ok("mongodb+srv://TEST1.Test.Build.10gen.CC");
        assert_eq!(parsed.srv_host(), Some(HOST));
        assert_eq!(
            parsed.srv_query_name().as_deref(),
            Some("_mongodb._tcp.test1.test.build.10gen.cc")
        );
        assert_eq!(addresses(&parsed), ["test1.test.build.10gen.cc:27017"]);
        let custom = ok("mongodb+srv://test22.test.build.10gen.cc/?srvServiceName=customname");
        assert_eq!(
            custom.srv_query_name().as_deref(),
            Some("_customname._tcp.test22.test.build.10gen.cc")
        );
        let standard = ok("mongodb://localhost");
        assert_eq!((standard.srv_host(), standard.srv_query_name()), (None, None));
        // Fewer than three labels are fine before DNS (the stricter rule applies to targets).
        assert_eq!(
            ok("mongodb+srv://localhost").srv_query_name().as_deref(),
            Some("_mongodb._tcp.localhost")
        );
        assert_eq!(ok("mongodb+srv://mongo.local").srv_host(), Some("mongo.local"));
    }

    #[test]
    fn srv_strings_are_checked_before_any_lookup() {
        assert_err(
            "mongodb+srv://test5.test.mongodb.com,test6.test.mongodb.com",
            "mongodb+srv:// takes exactly one host name, found 2",
        );
        assert_err(
            "mongodb+srv://test7.test.mongodb.com:27018",
            "mongodb+srv:// host \"test7.test.mongodb.com:27018\" cannot have a port",
        );
        assert_err("mongodb+srv://[::1]", "not the IP address \"[::1]\"");
        assert_err("mongodb+srv://127.0.0.1", "not the IP address \"127.0.0.1\"");
        assert_err("mongodb+srv://a..example.com", "has an empty label");
        assert_err("mongodb+srv://example.com./", "has an empty label");
        assert_err(
            "mongodb+srv://test3.test.build.10gen.cc/?directConnection=true",
            "directConnection=true cannot be used with mongodb+srv://",
        );
        assert_eq!(
            ok("mongodb+srv://test3.test.build.10gen.cc/?directConnection=false")
                .options
                .direct_connection,
            Some(false)
        );
        let with_auth =
            ok("mongodb+srv://b*b%40f3tt%3D:%244to%40L8%3DMC@test3.test.build.10gen.cc/mydb%3F?replicaSet=repl0");
        let credential = with_auth.credential.unwrap();
        assert_eq!(credential.username.as_deref(), Some("b*b@f3tt="));
        assert_eq!(credential.password.unwrap().expose(), "$4to@L8=MC");
        assert_eq!(with_auth.default_database.as_deref(), Some("mydb?"));
    }

    #[test]
    fn targets_become_the_seed_list() {
        let parsed = resolve(&format!("mongodb+srv://{HOST}/?replicaSet=repl0"), &[]).unwrap();
        assert_eq!(
            addresses(&parsed),
            [
                "localhost.test.build.10gen.cc:27017",
                "localhost.test.build.10gen.cc:27018"
            ]
        );
        assert_eq!(parsed.scheme, Scheme::Srv);
        assert_eq!(parsed.srv_host(), Some(HOST), "kept for SRV polling");
        assert!(parsed.tls_enabled());
        assert_eq!(parsed.options.replica_set.as_deref(), Some("repl0"));

        let mut upper = ok(&format!("mongodb+srv://{HOST}"));
        upper
            .apply_srv_records(
                &targets(&[
                    ("LOCALHOST.Test.Build.10GEN.cc", 8000),
                    ("localhost.test.build.10gen.cc.", 8000),
                ]),
                &[],
            )
            .unwrap();
        assert_eq!(
            addresses(&upper),
            ["localhost.test.build.10gen.cc:8000"],
            "one host, case and dot aside"
        );

        let mut empty = ok(&format!("mongodb+srv://{HOST}"));
        let message = empty.apply_srv_records(&[], &[]).unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid DNS records for test1.test.build.10gen.cc: the SRV query _mongodb._tcp.test1.test.build.10gen.cc returned no records, so there is no host to connect to"
        );
        let mut zero_port = ok(&format!("mongodb+srv://{HOST}"));
        let message = zero_port
            .apply_srv_records(&targets(&[("a.test.build.10gen.cc", 0)]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            message.ends_with("SRV target \"a.test.build.10gen.cc\" has port 0"),
            "{message}"
        );
    }

    #[test]
    fn applying_is_once_only_and_all_or_nothing() {
        let mut parsed = ok(&format!("mongodb+srv://{HOST}/?authSource=thisDB"));
        let before = parsed.clone();
        let bad = targets(&[("localhost.test.build.10gen.cc", 27017), ("evil.example.com", 27017)]);
        assert!(parsed.apply_srv_records(&bad, &["replicaSet=repl0".into()]).is_err());
        assert_eq!(parsed, before, "a failed apply changes nothing");
        parsed.apply_srv_records(&two_targets(), &[]).unwrap();
        let again = parsed.apply_srv_records(&two_targets(), &[]).unwrap_err();
        assert!(again.to_string().contains("already applied"), "{again}");
        let mut standard = ok("mongodb://localhost");
        let message = standard.apply_srv_records(&two_targets(), &[]).unwrap_err().to_string();
        assert!(
            message.contains("mongodb:// connection string, which has no SRV records"),
            "{message}"
        );
    }

    #[test]
    fn targets_must_share_the_srv_domain() {
        let check = |host: &str, target: &str| validate_srv_target(host, target, 27017);
        assert_eq!(
            check("test18.test.build.10gen.cc", "localhost.sub.test.build.10gen.cc")
                .unwrap()
                .to_string(),
            "localhost.sub.test.build.10gen.cc:27017",
            "a deeper subdomain is inside"
        );
        assert!(check("blogs.mongodb.com", "x.mongodb.com.").is_ok());
        assert!(check("localhost", "test_1.localhost").is_ok());
        assert!(check("mongo.local", "a.b.mongo.local").is_ok());
        let outside = [
            ("localhost", "localhost.mongodb"),
            ("mongo.local", "test_1.evil.local"),
            ("blogs.mongodb.com", "blogs.evil.com"),
            // Fewer than three labels: the host is the domain, so a target needs one more.
            ("localhost", "localhost"),
            ("mongo.local", "mongo.local"),
            // Sharing a suffix is not sharing a domain.
            ("localhost", "test_1.cluster_1localhost"),
            ("mongo.local", "test_1.my_hostmongo.local"),
            ("blogs.mongodb.com", "cluster.testmongodb.com"),
            // The parent itself, or a sibling of it.
            ("test13.test.build.10gen.cc", "test.build.10gen.cc"),
            ("test12.test.build.10gen.cc", "localhost.build.10gen.cc"),
            ("test14.test.build.10gen.cc", "localhost.not-test.build.10gen.cc"),
            ("test15.test.build.10gen.cc", "localhost.test.not-build.10gen.cc"),
            ("test16.test.build.10gen.cc", "localhost.test.build.not-10gen.cc"),
            ("test17.test.build.10gen.cc", "localhost.test.build.10gen.not-cc"),
            ("test19.test.build.10gen.cc", "localhost.evil.build.10gen.cc"),
        ];
        for (host, target) in outside {
            let message = check(host, target).unwrap_err().to_string();
            assert!(
                message.contains("is outside the domain"),
                "{host} -> {target}: {message}"
            );
        }
        assert_eq!(
            check("blogs.mongodb.com", "blogs.evil.com").unwrap_err().to_string(),
            "invalid DNS records for blogs.mongodb.com: SRV target \"blogs.evil.com\" is outside the domain \"mongodb.com\"; targets of \"blogs.mongodb.com\" must end with \".mongodb.com\""
        );
        for bad in [
            "",
            ".",
            "a..test.build.10gen.cc",
            "a b.test.build.10gen.cc",
            "a/b.test.build.10gen.cc",
        ] {
            let message = check(HOST, bad).unwrap_err().to_string();
            assert!(message.contains("is not a host name"), "{bad:?}: {message}");
        }
        // One bad target among good ones fails the whole answer.
        let mut parsed = ok("mongodb+srv://test19.test.build.10gen.cc");
        let mixed = targets(&[
            ("localhost.evil.build.10gen.cc", 27017),
            ("localhost.test.build.10gen.cc", 27017),
        ]);
        assert!(parsed.apply_srv_records(&mixed, &[]).is_err());
    }

    #[test]
    fn txt_record_options() {
        let parsed = resolve(
            "mongodb+srv://test5.test.build.10gen.cc/",
            &["replicaSet=repl0&authSource=thisDB"],
        )
        .unwrap();
        assert_eq!(parsed.options.replica_set.as_deref(), Some("repl0"));
        assert_eq!(parsed.options.auth_source.as_deref(), Some("thisDB"));
        assert_eq!(
            parsed.credential, None,
            "authSource alone does not ask for authentication"
        );
        assert!(parsed.tls_enabled());

        // The connection string wins over the TXT record.
        let overridden = resolve(
            "mongodb+srv://test5.test.build.10gen.cc/?authSource=otherDB",
            &["replicaSet=repl0&authSource=thisDB"],
        )
        .unwrap();
        assert_eq!(overridden.options.auth_source.as_deref(), Some("otherDB"));
        let no_tls = resolve(
            "mongodb+srv://test5.test.build.10gen.cc/?ssl=false",
            &["replicaSet=repl0&authSource=thisDB"],
        )
        .unwrap();
        assert!(!no_tls.tls_enabled());
        assert_eq!(no_tls.options.replica_set.as_deref(), Some("repl0"));

        // The driver joins a record's strings ("replicaS" "et=rep" "l0") before handing it over.
        let joined = ["replicaS", "et=rep", "l0"].concat();
        assert_eq!(
            resolve("mongodb+srv://test11.test.build.10gen.cc/", &[&joined])
                .unwrap()
                .options
                .replica_set
                .as_deref(),
            Some("repl0")
        );

        let lb = resolve("mongodb+srv://test21.test.build.10gen.cc/", &["loadBalanced=false"]).unwrap();
        assert_eq!(lb.options.load_balanced, Some(false));
        let repeated = resolve(
            "mongodb+srv://test5.test.build.10gen.cc/",
            &["replicaSet=a&replicaSet=b"],
        )
        .unwrap();
        assert_eq!(repeated.options.replica_set.as_deref(), Some("b"));
        assert_eq!(
            repeated.warnings,
            [
                "TXT record for test5.test.build.10gen.cc: option replicaSet is given more than once; the last one is used"
            ]
        );
    }

    #[test]
    fn txt_records_that_are_refused() {
        let uri = "mongodb+srv://test6.test.build.10gen.cc/";
        resolve_err(
            uri,
            &["replicaSet=repl0", "authSource=otherDB"],
            "2 TXT records; at most one is allowed",
        );
        resolve_err(
            uri,
            &["ssl=false"],
            "invalid TXT record for test6.test.build.10gen.cc: option ssl is not allowed in a TXT record (only authSource, replicaSet and loadBalanced)",
        );
        resolve_err(
            uri,
            &["socketTimeoutMS=500"],
            "option socketTimeoutMS is not allowed in a TXT record",
        );
        resolve_err(uri, &["foo=bar"], "option \"foo\" is not allowed in a TXT record");
        resolve_err(
            uri,
            &["authSource"],
            "invalid TXT record for test6.test.build.10gen.cc: option \"authSource\" has no value",
        );
        resolve_err(uri, &["loadBalanced=maybe"], "\"loadBalanced=maybe\" is not a boolean");
        resolve_err(uri, &["authSource="], "option authSource needs a value");
    }

    #[test]
    fn rules_checked_after_the_txt_record() {
        resolve_err(
            "mongodb+srv://test24.test.build.10gen.cc/?replicaSet=replset",
            &["loadBalanced=true"],
            "invalid DNS records for test24.test.build.10gen.cc: loadBalanced=true cannot be used with replicaSet",
        );
        resolve_err(
            "mongodb+srv://test24.test.build.10gen.cc/?srvMaxHosts=1",
            &["loadBalanced=true"],
            "srvMaxHosts cannot be used with loadBalanced=true",
        );
        resolve_err(
            "mongodb+srv://test5.test.build.10gen.cc/?srvMaxHosts=1",
            &["replicaSet=repl0"],
            "srvMaxHosts cannot be used with replicaSet",
        );
        // Two targets behind a load balancer.
        resolve_err(
            "mongodb+srv://test1.test.build.10gen.cc/?loadBalanced=true",
            &[],
            "loadBalanced=true needs exactly one host, but the SRV records name 2",
        );
        resolve_err(
            "mongodb+srv://test1.test.build.10gen.cc/",
            &["loadBalanced=true"],
            "needs exactly one host",
        );

        let mut balanced = ok("mongodb+srv://test24.test.build.10gen.cc/?directConnection=false&srvMaxHosts=0");
        balanced
            .apply_srv_records(
                &targets(&[("localhost.test.build.10gen.cc.", 8000)]),
                &["loadBalanced=true".into()],
            )
            .unwrap();
        assert_eq!(balanced.options.load_balanced, Some(true));
        assert_eq!(addresses(&balanced), ["localhost.test.build.10gen.cc:8000"]);
        let kept = resolve(
            "mongodb+srv://test5.test.build.10gen.cc/?srvMaxHosts=0",
            &["replicaSet=repl0&authSource=thisDB"],
        )
        .unwrap();
        assert_eq!(kept.hosts.len(), 2);
    }

    #[test]
    fn txt_auth_source_reaches_the_credential() {
        let scram = resolve(
            "mongodb+srv://auser:apass@test5.test.build.10gen.cc/db",
            &["authSource=thisDB"],
        )
        .unwrap();
        let credential = scram.credential.unwrap();
        assert_eq!(credential.source.as_deref(), Some("thisDB"));
        assert_eq!(credential.password.unwrap().expose(), "apass");
        let own = resolve("mongodb+srv://auser:apass@test5.test.build.10gen.cc/db", &[]).unwrap();
        assert_eq!(own.credential.unwrap().source.as_deref(), Some("db"));
        let x509 = resolve(
            "mongodb+srv://test5.test.build.10gen.cc/?authMechanism=MONGODB-X509",
            &["authSource=$external"],
        )
        .unwrap();
        assert_eq!(
            x509.credential.as_ref().and_then(|c| c.mechanism.clone()),
            Some(AuthMechanism::MongoDbX509)
        );
        resolve_err(
            "mongodb+srv://test5.test.build.10gen.cc/?authMechanism=MONGODB-X509",
            &["authSource=thisDB"],
            "authSource cannot name another database (authSource comes from the TXT record for test5.test.build.10gen.cc)",
        );
    }

    #[test]
    fn srv_max_hosts_chooses_at_random() {
        let four = targets(&[
            ("a.test.build.10gen.cc", 1),
            ("b.test.build.10gen.cc", 2),
            ("c.test.build.10gen.cc", 3),
            ("d.test.build.10gen.cc", 4),
        ]);
        let chosen = |max: u32, picks: &[usize]| {
            let mut parsed = ok(&format!("mongodb+srv://{HOST}/?srvMaxHosts={max}"));
            let mut picks = picks.iter().copied();
            parsed
                .apply_srv_records_with(&four, &[], |bound| {
                    let pick = picks.next().expect("asked for more random numbers than expected");
                    assert!(pick < bound.max(pick + 1));
                    pick
                })
                .unwrap();
            parsed.hosts.iter().map(|host| host.port()).collect::<Vec<_>>()
        };
        assert_eq!(chosen(0, &[]), [1, 2, 3, 4], "0 means all, without randomness");
        assert_eq!(chosen(4, &[]), [1, 2, 3, 4]);
        assert_eq!(chosen(9, &[]), [1, 2, 3, 4]);
        // First pick: index 3 of [1,2,3,4] -> 4; second: index 0 of the rest [2,3,1] -> 2.
        assert_eq!(chosen(2, &[3, 0]), [4, 2]);
        assert_eq!(chosen(1, &[0]), [1]);
        assert_eq!(chosen(3, &[1, 1, 1]), [2, 3, 4]);
        // Out-of-range picks wrap instead of panicking.
        assert_eq!(chosen(1, &[7]), [4]);

        let mut parsed = ok(&format!("mongodb+srv://{HOST}/?srvMaxHosts=2"));
        parsed.apply_srv_records(&four, &[]).unwrap();
        assert_eq!(parsed.hosts.len(), 2);
        assert_ne!(parsed.hosts[0], parsed.hosts[1]);
        assert!((0..100).all(|_| random_below(3) < 3));
        assert_eq!(random_below(1), 0);
    }
}
