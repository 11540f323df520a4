//! The `?key=value` options: their typed values, how each is read, and the rules that tie
//! several together.
//!
//! Keys match case-insensitively (ASCII only, as the Connection String spec says) and are
//! reported with the spelling of the URI Options spec. Values are percent-decoded before they
//! are read. Unknown keys are warned about and ignored, as the spec requires, so that one
//! connection string can serve drivers with different option sets. Invalid values of known
//! keys are errors, where the spec would warn and ignore them: a misspelt `tls=ture` that is
//! quietly dropped connects in plain text, and nothing guarantees that a caller logs warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use crate::Result;
use crate::protocol::{
    Acknowledgment, AuthMechanism, Password, ReadConcern, ReadConcernLevel, ReadPreference, ReadPreferenceMode, TagSet,
    WriteConcern,
};
use crate::wire::Compressor;

use super::text::{DecodeProblem, Source, percent_decode};

/// How servers are monitored (the SDAM spec's `serverMonitoringMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerMonitoringMode {
    /// The streaming protocol (awaitable `hello`) when the server supports it.
    Stream,
    /// Polling `hello` every `heartbeatFrequencyMS`.
    Poll,
    /// Polling on FaaS platforms, streaming elsewhere.
    #[default]
    Auto,
}

impl ServerMonitoringMode {
    /// The name in connection strings.
    pub fn name(self) -> &'static str {
        match self {
            ServerMonitoringMode::Stream => "stream",
            ServerMonitoringMode::Poll => "poll",
            ServerMonitoringMode::Auto => "auto",
        }
    }
}

/// The options of a connection string, typed. `None` means the string did not set the option,
/// so the driver's default applies; the credential options (`authMechanism`,
/// `authMechanismProperties`) live in [`ConnectionString::credential`] instead.
///
/// Durations come from the `…MS` options (and `maxStalenessSeconds`). Where the spec gives 0 a
/// meaning of its own ("no timeout", "no limit"), the field says so and holds `Duration::ZERO`
/// or `0`.
///
/// [`ConnectionString::credential`]: super::ConnectionString::credential
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct UriOptions {
    /// `replicaSet`: the replica set name to require.
    pub replica_set: Option<String>,
    /// `directConnection`: talk to the one given host only (Single topology).
    pub direct_connection: Option<bool>,
    /// `loadBalanced`: the one host is a load balancer in front of mongos servers.
    pub load_balanced: Option<bool>,

    /// `tls` (or its alias `ssl`) as given; see
    /// [`ConnectionString::tls_enabled`](super::ConnectionString::tls_enabled) for the
    /// effective value.
    pub tls: Option<bool>,
    /// `tlsCAFile`: PEM file of the certificate authorities to trust.
    pub tls_ca_file: Option<PathBuf>,
    /// `tlsCertificateKeyFile`: PEM file with the client certificate and its private key.
    pub tls_certificate_key_file: Option<PathBuf>,
    /// `tlsCertificateKeyFilePassword`: decrypts the private key; redacted like any password.
    pub tls_certificate_key_file_password: Option<Password>,
    /// `tlsAllowInvalidCertificates`: accept any server certificate (testing only).
    pub tls_allow_invalid_certificates: Option<bool>,
    /// `tlsAllowInvalidHostnames`: accept a certificate issued to another host name.
    pub tls_allow_invalid_hostnames: Option<bool>,
    /// `tlsInsecure`: relax every certificate check mongowire can relax: invalid
    /// certificates, host names and revocation checks.
    pub tls_insecure: Option<bool>,
    /// `tlsDisableOCSPEndpointCheck`: do not contact OCSP responders.
    pub tls_disable_ocsp_endpoint_check: Option<bool>,
    /// `tlsDisableCertificateRevocationCheck`: skip CRL and OCSP revocation checks.
    pub tls_disable_certificate_revocation_check: Option<bool>,

    /// `authSource` as given, even without credentials (it then means nothing by itself, as
    /// the Authentication spec requires); the credential holds the resolved source.
    pub auth_source: Option<String>,

    /// `appName`: sent in the handshake and shown in server logs; at most 128 bytes.
    pub app_name: Option<String>,
    /// `compressors`, in order of preference; unknown names were dropped with a warning.
    pub compressors: Option<Vec<Compressor>>,
    /// `zlibCompressionLevel`: -1 (zlib's default) to 9.
    pub zlib_compression_level: Option<i32>,

    /// `connectTimeoutMS`; zero means no timeout.
    pub connect_timeout: Option<Duration>,
    /// `socketTimeoutMS`; zero means no timeout.
    pub socket_timeout: Option<Duration>,
    /// `serverSelectionTimeoutMS`; always positive.
    pub server_selection_timeout: Option<Duration>,
    /// `serverSelectionTryOnce` (single-threaded drivers only; kept for completeness).
    pub server_selection_try_once: Option<bool>,
    /// `heartbeatFrequencyMS`; at least 500 ms.
    pub heartbeat_frequency: Option<Duration>,
    /// `localThresholdMS`: the latency window above the fastest server.
    pub local_threshold: Option<Duration>,
    /// `timeoutMS`: the client-side operation timeout; zero means no limit.
    pub timeout: Option<Duration>,
    /// `serverMonitoringMode`.
    pub server_monitoring_mode: Option<ServerMonitoringMode>,

    /// `maxPoolSize`; 0 means no limit.
    pub max_pool_size: Option<u32>,
    /// `minPoolSize`; at most `maxPoolSize` unless that is 0.
    pub min_pool_size: Option<u32>,
    /// `maxIdleTimeMS`; zero means connections may idle forever.
    pub max_idle_time: Option<Duration>,
    /// `maxConnecting`: connections a pool may establish at once; at least 1.
    pub max_connecting: Option<u32>,
    /// `waitQueueTimeoutMS`: how long a checkout may wait; always positive.
    pub wait_queue_timeout: Option<Duration>,

    /// `readPreference`.
    pub read_preference: Option<ReadPreferenceMode>,
    /// `readPreferenceTags`, one tag set per occurrence, in order; empty when not given.
    pub read_preference_tags: Vec<TagSet>,
    /// `maxStalenessSeconds`; at least 90 s. `-1` (no bound) leaves it `None`.
    pub max_staleness: Option<Duration>,
    /// `readConcernLevel`; unknown levels are kept for newer servers.
    pub read_concern_level: Option<ReadConcernLevel>,

    /// `w`.
    pub w: Option<Acknowledgment>,
    /// `wTimeoutMS`; zero means no timeout.
    pub w_timeout: Option<Duration>,
    /// `journal`.
    pub journal: Option<bool>,
    /// `retryReads`.
    pub retry_reads: Option<bool>,
    /// `retryWrites`.
    pub retry_writes: Option<bool>,

    /// `srvMaxHosts`: how many SRV targets to use; 0 means all.
    pub srv_max_hosts: Option<u32>,
    /// `srvServiceName`: the service of the SRV query; `mongodb` by default.
    pub srv_service_name: Option<String>,

    /// `maxAdaptiveRetries`: retries of overloaded operations (client backpressure).
    pub max_adaptive_retries: Option<u32>,
    /// `enableOverloadRetargeting`: retry overloaded operations on another server.
    pub enable_overload_retargeting: Option<bool>,
}

impl UriOptions {
    /// The read preference the options describe, or `None` when they set none of
    /// `readPreference`, `readPreferenceTags` and `maxStalenessSeconds` (the default,
    /// primary, then applies).
    pub fn read_preference(&self) -> Option<ReadPreference> {
        if self.read_preference.is_none() && self.read_preference_tags.is_empty() && self.max_staleness.is_none() {
            return None;
        }
        Some(ReadPreference {
            mode: self.read_preference.unwrap_or_default(),
            tag_sets: self.read_preference_tags.clone(),
            max_staleness: self.max_staleness,
        })
    }

    /// The read concern, when `readConcernLevel` was given.
    pub fn read_concern(&self) -> Option<ReadConcern> {
        self.read_concern_level.clone().map(|level| ReadConcern { level })
    }

    /// The write concern, when any of `w`, `wTimeoutMS` and `journal` was given.
    pub fn write_concern(&self) -> Option<WriteConcern> {
        if self.w.is_none() && self.w_timeout.is_none() && self.journal.is_none() {
            return None;
        }
        Some(WriteConcern {
            w: self.w.clone(),
            w_timeout: self.w_timeout,
            journal: self.journal,
        })
    }

    /// Whether any `tls…` option other than `tls` itself was given.
    pub(super) fn has_tls_settings(&self) -> bool {
        self.tls_setting_names().next().is_some()
    }

    fn tls_setting_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            (self.tls_ca_file.is_some(), Key::TlsCaFile),
            (self.tls_certificate_key_file.is_some(), Key::TlsCertificateKeyFile),
            (
                self.tls_certificate_key_file_password.is_some(),
                Key::TlsCertificateKeyFilePassword,
            ),
            (
                self.tls_allow_invalid_certificates.is_some(),
                Key::TlsAllowInvalidCertificates,
            ),
            (
                self.tls_allow_invalid_hostnames.is_some(),
                Key::TlsAllowInvalidHostnames,
            ),
            (self.tls_insecure.is_some(), Key::TlsInsecure),
            (
                self.tls_disable_ocsp_endpoint_check.is_some(),
                Key::TlsDisableOcspEndpointCheck,
            ),
            (
                self.tls_disable_certificate_revocation_check.is_some(),
                Key::TlsDisableCertificateRevocationCheck,
            ),
        ]
        .into_iter()
        .filter(|(given, _)| *given)
        .map(|(_, key)| key.name())
    }
}

/// The rules between options that need nothing but the options: the TLS conflicts of the URI
/// Options spec, read preference, write concern, pool sizes, and the load balancer and
/// `srvMaxHosts` rules. Returns what is wrong, for the caller to prefix.
pub(super) fn validate(options: &UriOptions) -> Result<(), String> {
    let given: Vec<&str> = options.tls_setting_names().collect();
    if options.tls == Some(false)
        && let Some(first) = given.first()
    {
        return Err(format!(
            "tls=false conflicts with {first}; remove the TLS settings or set tls=true"
        ));
    }
    // Each pair relaxes overlapping checks two ways; the spec makes any combination an error,
    // whatever the values, so a URI never depends on which one wins.
    const EXCLUSIVE: [(Key, Key); 7] = [
        (Key::TlsInsecure, Key::TlsAllowInvalidCertificates),
        (Key::TlsInsecure, Key::TlsAllowInvalidHostnames),
        (Key::TlsInsecure, Key::TlsDisableOcspEndpointCheck),
        (Key::TlsInsecure, Key::TlsDisableCertificateRevocationCheck),
        (Key::TlsAllowInvalidCertificates, Key::TlsDisableOcspEndpointCheck),
        (
            Key::TlsAllowInvalidCertificates,
            Key::TlsDisableCertificateRevocationCheck,
        ),
        (
            Key::TlsDisableOcspEndpointCheck,
            Key::TlsDisableCertificateRevocationCheck,
        ),
    ];
    for (a, b) in EXCLUSIVE {
        if given.contains(&a.name()) && given.contains(&b.name()) {
            return Err(format!("{} and {} cannot both be given", a.name(), b.name()));
        }
    }

    let mode = options.read_preference.unwrap_or_default();
    if mode == ReadPreferenceMode::Primary {
        if options.read_preference_tags.iter().any(|set| !set.is_empty()) {
            return Err("readPreferenceTags need a readPreference other than primary (the default)".into());
        }
        if options.max_staleness.is_some() {
            return Err("maxStalenessSeconds needs a readPreference other than primary (the default)".into());
        }
    }

    if options.w == Some(Acknowledgment::Nodes(0)) && options.journal == Some(true) {
        return Err("w=0 asks for no acknowledgment, which contradicts journal=true".into());
    }
    if let (Some(min), Some(max)) = (options.min_pool_size, options.max_pool_size)
        && max > 0
        && min > max
    {
        return Err(format!("minPoolSize={min} is larger than maxPoolSize={max}"));
    }
    validate_topology(options)
}

/// The load balancer and `srvMaxHosts` rules between options; checked again once a TXT record
/// has added its options.
pub(super) fn validate_topology(options: &UriOptions) -> Result<(), String> {
    let srv_max_hosts = options.srv_max_hosts.unwrap_or(0);
    if options.load_balanced == Some(true) {
        if options.replica_set.is_some() {
            return Err("loadBalanced=true cannot be used with replicaSet".into());
        }
        if options.direct_connection == Some(true) {
            return Err("loadBalanced=true cannot be used with directConnection=true".into());
        }
        if srv_max_hosts > 0 {
            return Err("srvMaxHosts cannot be used with loadBalanced=true".into());
        }
    }
    if srv_max_hosts > 0 && options.replica_set.is_some() {
        return Err("srvMaxHosts cannot be used with replicaSet".into());
    }
    Ok(())
}

/// One `key=value` pair: byte ranges of its key and (still encoded) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pair {
    pub(super) key: Range<usize>,
    pub(super) value: Range<usize>,
}

impl Pair {
    fn whole(&self) -> Range<usize> {
        self.key.start..self.value.end
    }
}

/// Splits the options at `range` into pairs. `&` separates them; `;` does when no `&`
/// appears, a legacy form the spec allows (with a warning here). Empty pieces, as in `?&w=1`,
/// are skipped.
pub(super) fn split_query(source: &Source<'_>, range: Range<usize>, warnings: &mut Vec<String>) -> Result<Vec<Pair>> {
    let query = source.get(range.clone());
    let separator = if !query.contains('&') && query.contains(';') {
        warnings.push("options are separated by ';', a legacy form; use '&' instead".into());
        ';'
    } else {
        '&'
    };
    let mut pairs = Vec::new();
    let mut start = range.start;
    for piece in query.split(separator) {
        let piece_range = start..start + piece.len();
        start = piece_range.end + 1;
        if piece.is_empty() {
            continue;
        }
        let Some(equals) = piece.find('=') else {
            return Err(source.invalid(format!(
                "option {} has no value; options are written key=value",
                source.quote(piece_range)
            )));
        };
        if equals == 0 {
            return Err(source.invalid(format!("option {} has no name before '='", source.quote(piece_range))));
        }
        pairs.push(Pair {
            key: piece_range.start..piece_range.start + equals,
            value: piece_range.start + equals + 1..piece_range.end,
        });
    }
    Ok(pairs)
}

/// Where options come from: the connection string, or the TXT record of a `mongodb+srv` host,
/// which may only set three of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    ConnectionString,
    TxtRecord,
}

/// The Initial DNS Seedlist Discovery spec lets a TXT record set these three options only.
const NOT_IN_TXT: &str = "is not allowed in a TXT record (only authSource, replicaSet and loadBalanced)";

/// Options read so far, with the credential options that end up in the credential, the byte
/// ranges of secret values (for the redacted form) and warnings.
#[derive(Debug, Default)]
pub(super) struct Collected {
    pub(super) options: UriOptions,
    pub(super) mechanism: Option<AuthMechanism>,
    pub(super) mechanism_properties: BTreeMap<String, String>,
    pub(super) secret_ranges: Vec<Range<usize>>,
    pub(super) warnings: Vec<String>,
    seen: BTreeSet<Key>,
    /// The first of `tls`/`ssl` given, which every later one must agree with.
    tls_from: Option<Key>,
}

impl Collected {
    /// Reads one pair into the options.
    pub(super) fn apply(&mut self, source: &Source<'_>, pair: &Pair, origin: Origin) -> Result<()> {
        let key_text = source.get(pair.key.clone());
        let Some(key) = Key::from_name(key_text) else {
            if origin == Origin::TxtRecord {
                return Err(source.invalid(format!("option {} {NOT_IN_TXT}", source.quote(pair.key.clone()))));
            }
            // Options of other drivers may hold secrets too (sslPEMKeyPassword, ...).
            if key_text.to_ascii_lowercase().contains("password") {
                self.secret_ranges.push(pair.value.clone());
            }
            self.warnings.push(unknown_option(source, pair));
            return Ok(());
        };
        if origin == Origin::TxtRecord && !matches!(key, Key::AuthSource | Key::ReplicaSet | Key::LoadBalanced) {
            return Err(source.invalid(format!("option {} {NOT_IN_TXT}", key.name())));
        }
        let secret = matches!(
            key,
            Key::TlsCertificateKeyFilePassword | Key::ProxyPassword | Key::AuthMechanismProperties
        );
        if matches!(key, Key::TlsCertificateKeyFilePassword | Key::ProxyPassword) {
            self.secret_ranges.push(pair.value.clone());
        }
        let repeated = !self.seen.insert(key);
        if repeated && !matches!(key, Key::ReadPreferenceTags | Key::Tls | Key::Ssl) {
            self.warnings.push(format!(
                "option {} is given more than once; the last one is used",
                key.name()
            ));
        }
        let raw = source.get(pair.value.clone());
        let text = percent_decode(raw).map_err(|problem| {
            source.invalid(match problem {
                DecodeProblem::BadEscape(at) => format!(
                    "the value of {} has a '%' at byte {} that does not start a %XX escape",
                    key.name(),
                    pair.value.start + at
                ),
                DecodeProblem::NotUtf8 => {
                    format!("the value of {} is not UTF-8 once decoded", key.name())
                }
            })
        })?;
        let value = Value {
            key,
            text: &text,
            source,
            pair,
            secret,
        };
        self.set(value)
    }

    fn set(&mut self, value: Value<'_>) -> Result<()> {
        const I32_MAX: i64 = 2_147_483_647;
        const AT_LEAST_0: &str = "must be 0 or more";
        const AT_LEAST_1: &str = "must be 1 or more";
        let options = &mut self.options;
        let warnings = &mut self.warnings;
        match value.key {
            Key::AppName => {
                let name = value.string()?;
                if name.len() > 128 {
                    return Err(value.error(format!(
                        "is {} bytes long; the handshake allows at most 128",
                        name.len()
                    )));
                }
                options.app_name = Some(name);
            }
            Key::AuthMechanism => {
                let name = value.string()?;
                let mechanism = AuthMechanism::from_name(&name).ok_or_else(|| {
                    value.error(
                        "is not an authentication mechanism; expected SCRAM-SHA-256, SCRAM-SHA-1, \
                         MONGODB-X509, PLAIN, GSSAPI, MONGODB-AWS or MONGODB-OIDC (in capitals)",
                    )
                })?;
                self.mechanism = Some(mechanism);
            }
            Key::AuthMechanismProperties => {
                self.mechanism_properties = value.properties(&mut self.secret_ranges)?;
            }
            Key::AuthSource => options.auth_source = Some(value.string()?),
            Key::Compressors => options.compressors = Some(value.compressors(warnings)?),
            Key::ConnectTimeoutMs => keep(
                &mut options.connect_timeout,
                value.millis(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::DirectConnection => keep(&mut options.direct_connection, value.flag(warnings)?),
            Key::EnableOverloadRetargeting => keep(&mut options.enable_overload_retargeting, value.flag(warnings)?),
            Key::HeartbeatFrequencyMs => keep(
                &mut options.heartbeat_frequency,
                value.millis(warnings, 500, I32_MAX, "must be at least 500")?,
            ),
            Key::Journal => keep(&mut options.journal, value.flag(warnings)?),
            Key::LoadBalanced => keep(&mut options.load_balanced, value.flag(warnings)?),
            Key::LocalThresholdMs => keep(
                &mut options.local_threshold,
                value.millis(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::MaxAdaptiveRetries => keep(
                &mut options.max_adaptive_retries,
                value.number(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::MaxConnecting => keep(
                &mut options.max_connecting,
                value.number(warnings, 1, I32_MAX, AT_LEAST_1)?,
            ),
            Key::MaxIdleTimeMs => keep(
                &mut options.max_idle_time,
                value.millis(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::MaxPoolSize => keep(
                &mut options.max_pool_size,
                value.number(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::MaxStalenessSeconds => {
                let rule = "must be -1 (no bound) or at least 90";
                if let Some(seconds) = value.number::<i64>(warnings, -1, I32_MAX, rule)? {
                    if seconds != -1 && seconds < 90 {
                        return Err(value.error(format!("is out of range: {rule}")));
                    }
                    options.max_staleness = u64::try_from(seconds).ok().map(Duration::from_secs);
                }
            }
            Key::MinPoolSize => keep(
                &mut options.min_pool_size,
                value.number(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::ReadConcernLevel => options.read_concern_level = Some(ReadConcernLevel::from_name(&value.string()?)),
            Key::ReadPreference => {
                let mode = ReadPreferenceMode::from_name(value.text).ok_or_else(|| {
                    value.error(
                        "is not a read preference mode; expected primary, primaryPreferred, \
                         secondary, secondaryPreferred or nearest",
                    )
                })?;
                options.read_preference = Some(mode);
            }
            Key::ReadPreferenceTags => options.read_preference_tags.push(value.tag_set()?),
            Key::ReplicaSet => options.replica_set = Some(value.string()?),
            Key::RetryReads => keep(&mut options.retry_reads, value.flag(warnings)?),
            Key::RetryWrites => keep(&mut options.retry_writes, value.flag(warnings)?),
            Key::ServerMonitoringMode => {
                let mode = [
                    ServerMonitoringMode::Stream,
                    ServerMonitoringMode::Poll,
                    ServerMonitoringMode::Auto,
                ]
                .into_iter()
                .find(|mode| mode.name().eq_ignore_ascii_case(value.text))
                .ok_or_else(|| value.error("is not a monitoring mode; expected stream, poll or auto"))?;
                options.server_monitoring_mode = Some(mode);
            }
            Key::ServerSelectionTimeoutMs => keep(
                &mut options.server_selection_timeout,
                value.millis(warnings, 1, I32_MAX, AT_LEAST_1)?,
            ),
            Key::ServerSelectionTryOnce => keep(&mut options.server_selection_try_once, value.flag(warnings)?),
            Key::SocketTimeoutMs => keep(
                &mut options.socket_timeout,
                value.millis(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::SrvMaxHosts => keep(
                &mut options.srv_max_hosts,
                value.number(warnings, 0, I32_MAX, AT_LEAST_0)?,
            ),
            Key::SrvServiceName => options.srv_service_name = Some(value.service_name()?),
            Key::Ssl | Key::Tls => {
                if let Some(enabled) = value.flag(warnings)? {
                    match (self.tls_from, options.tls) {
                        (Some(first), Some(earlier)) if earlier != enabled => {
                            return Err(value.source.invalid(format!(
                                "{}={enabled} conflicts with {}={earlier} given before it \
                                 (tls and ssl are one option)",
                                value.key.name(),
                                first.name()
                            )));
                        }
                        _ => {}
                    }
                    self.tls_from.get_or_insert(value.key);
                    options.tls = Some(enabled);
                }
            }
            Key::TimeoutMs => keep(&mut options.timeout, value.millis(warnings, 0, i64::MAX, AT_LEAST_0)?),
            Key::TlsAllowInvalidCertificates => {
                keep(&mut options.tls_allow_invalid_certificates, value.flag(warnings)?)
            }
            Key::TlsAllowInvalidHostnames => keep(&mut options.tls_allow_invalid_hostnames, value.flag(warnings)?),
            Key::TlsCaFile => options.tls_ca_file = Some(PathBuf::from(value.string()?)),
            Key::TlsCertificateKeyFile => options.tls_certificate_key_file = Some(PathBuf::from(value.string()?)),
            Key::TlsCertificateKeyFilePassword => {
                options.tls_certificate_key_file_password = Some(Password::new(value.text))
            }
            Key::TlsDisableCertificateRevocationCheck => keep(
                &mut options.tls_disable_certificate_revocation_check,
                value.flag(warnings)?,
            ),
            Key::TlsDisableOcspEndpointCheck => {
                keep(&mut options.tls_disable_ocsp_endpoint_check, value.flag(warnings)?)
            }
            Key::TlsInsecure => keep(&mut options.tls_insecure, value.flag(warnings)?),
            Key::W => options.w = Some(value.acknowledgment()?),
            Key::WaitQueueTimeoutMs => keep(
                &mut options.wait_queue_timeout,
                value.millis(warnings, 1, I32_MAX, AT_LEAST_1)?,
            ),
            Key::WTimeoutMs => keep(&mut options.w_timeout, value.millis(warnings, 0, i64::MAX, AT_LEAST_0)?),
            Key::ZlibCompressionLevel => keep(
                &mut options.zlib_compression_level,
                value.number(warnings, -1, 9, "must be -1 to 9")?,
            ),
            // The spec says unsupported keys are ignored with a warning. Connecting directly
            // where a proxy was asked for may fail, but that failure then names the host.
            Key::ProxyHost | Key::ProxyPort | Key::ProxyUsername | Key::ProxyPassword => warnings.push(format!(
                "option {} ignored: mongowire does not support SOCKS5 proxies",
                value.key.name()
            )),
        }
        Ok(())
    }
}

/// Stores `value` unless it is `None` (an empty value, ignored with a warning), so an empty
/// repeat does not erase an earlier value.
fn keep<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// The warning for an unknown key, naming the option it probably meant; quotes the key only
/// (its value may be a secret of another driver's option).
fn unknown_option(source: &Source<'_>, pair: &Pair) -> String {
    let quoted = source.quote(pair.key.clone());
    if source.may_hold_password(&pair.key) {
        return format!("unknown option {quoted} ignored");
    }
    let lower = source.get(pair.key.clone()).to_ascii_lowercase();
    // Short keys are close to too much; long ones close to nothing (and costly to compare).
    if !(4..=64).contains(&lower.len()) {
        return format!("unknown option {quoted} ignored");
    }
    let closest = KEYS
        .iter()
        .map(|known| (edit_distance(&lower, &known.name().to_ascii_lowercase()), known))
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((distance, known)) if distance <= 2 => {
            format!("unknown option {quoted} ignored; did you mean {}?", known.name())
        }
        _ => format!("unknown option {quoted} ignored"),
    }
}

/// Levenshtein distance, for suggesting the option a misspelt key meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous.get(j).map_or(usize::MAX, |d| d + usize::from(ca != *cb));
            let delete = previous.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = current.get(j).map_or(usize::MAX, |d| d + 1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or_default()
}

/// A decoded value and where it came from, for messages.
struct Value<'v> {
    key: Key,
    text: &'v str,
    source: &'v Source<'v>,
    pair: &'v Pair,
    /// The value is (or may hold) a secret, so messages never quote it.
    secret: bool,
}

impl Value<'_> {
    /// An error about this `key=value` pair, quoted unless it may hold a secret.
    fn error(&self, problem: impl std::fmt::Display) -> crate::Error {
        if self.secret {
            self.source
                .invalid(format!("the value of {} {problem}", self.key.name()))
        } else {
            self.source
                .invalid(format!("{} {problem}", self.source.quote(self.pair.whole())))
        }
    }

    /// A non-secret piece of the decoded value (a compressor or property name), quoted unless
    /// the pair may be part of a password.
    fn mention(&self, fragment: &str) -> String {
        if self.source.may_hold_password(&self.pair.whole()) {
            "(not shown: it may be part of a password)".into()
        } else {
            format!("{fragment:?}")
        }
    }

    fn empty_ignored(&self, warnings: &mut Vec<String>) {
        warnings.push(format!("option {} has an empty value; ignored", self.key.name()));
    }

    /// A string option; empty values are errors, as they name nothing.
    fn string(&self) -> Result<String> {
        if self.text.is_empty() {
            return Err(self.source.invalid(format!("option {} needs a value", self.key.name())));
        }
        Ok(self.text.to_owned())
    }

    /// A boolean: `true` or `false`, or one of the legacy spellings the spec still recommends
    /// accepting, with the deprecation warning it requires. Empty means "ignore" (spec).
    fn flag(&self, warnings: &mut Vec<String>) -> Result<Option<bool>> {
        let value = match self.text.to_ascii_lowercase().as_str() {
            "" => {
                self.empty_ignored(warnings);
                return Ok(None);
            }
            "true" => true,
            "false" => false,
            legacy @ ("1" | "yes" | "y" | "t" | "0" | "-1" | "no" | "n" | "f") => {
                let value = matches!(legacy, "1" | "yes" | "y" | "t");
                warnings.push(format!(
                    "deprecated boolean value for {}; write {}={value}",
                    self.key.name(),
                    self.key.name()
                ));
                value
            }
            _ => return Err(self.error("is not a boolean; expected true or false")),
        };
        Ok(Some(value))
    }

    /// An integer in `min..=max`, as `T`. Empty means "ignore" (spec).
    fn number<T: TryFrom<i64>>(&self, warnings: &mut Vec<String>, min: i64, max: i64, rule: &str) -> Result<Option<T>> {
        if self.text.is_empty() {
            self.empty_ignored(warnings);
            return Ok(None);
        }
        let number: i64 = self.text.parse().map_err(|_| self.error("is not a whole number"))?;
        if !(min..=max).contains(&number) {
            return Err(self.error(format!("is out of range: {rule}")));
        }
        T::try_from(number)
            .map(Some)
            .map_err(|_| self.error(format!("is out of range: {rule}")))
    }

    fn millis(&self, warnings: &mut Vec<String>, min: i64, max: i64, rule: &str) -> Result<Option<Duration>> {
        Ok(self.number::<u64>(warnings, min, max, rule)?.map(Duration::from_millis))
    }

    /// `w`: `majority`, a number of members, or the name of a custom write concern.
    fn acknowledgment(&self) -> Result<Acknowledgment> {
        let text = self.string()?;
        if text == "majority" {
            return Ok(Acknowledgment::Majority);
        }
        let digits = text.strip_prefix('-').unwrap_or(&text);
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Acknowledgment::Custom(text));
        }
        text.parse::<i64>()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Acknowledgment::Nodes)
            .ok_or_else(|| self.error("is out of range: a number of members must be 0 to 2147483647"))
    }

    /// `name:value` pairs separated by `,` (a value may contain `:`, never `,`), keyed by
    /// `normalize(name)`; a name given twice is an error.
    fn pairs(&self, what: &str, normalize: fn(&str) -> String) -> Result<BTreeMap<String, String>> {
        let mut pairs = BTreeMap::new();
        for (index, entry) in self.text.split(',').enumerate() {
            let number = index + 1;
            let Some((name, value)) = entry.split_once(':') else {
                return Err(self.error(format!(
                    "has no ':' in entry {number}; expected {what} such as a:1,b:2 \
                     (a value cannot contain ',')"
                )));
            };
            if name.is_empty() {
                return Err(self.error(format!("has an empty name in entry {number}")));
            }
            if pairs.insert(normalize(name), value.to_owned()).is_some() {
                return Err(self.error(format!("gives {} twice (entry {number})", self.mention(name))));
            }
        }
        Ok(pairs)
    }

    /// One `readPreferenceTags` occurrence; empty is the tag set that matches any member.
    fn tag_set(&self) -> Result<TagSet> {
        if self.text.is_empty() {
            return Ok(TagSet::new());
        }
        // Tag names are case-sensitive, like the replica set configuration they match.
        self.pairs("tags", str::to_owned)
    }

    /// `authMechanismProperties`; names are upper-cased, as the Authentication spec makes them
    /// case-insensitive. A value holding an AWS session token is redacted like a password.
    fn properties(&self, secret_ranges: &mut Vec<Range<usize>>) -> Result<BTreeMap<String, String>> {
        self.string()?;
        let properties = self.pairs("properties", str::to_ascii_uppercase)?;
        if properties.keys().any(|name| is_secret_property(name)) {
            secret_ranges.push(self.pair.value.clone());
        }
        Ok(properties)
    }

    /// Compressors in order; unknown names are dropped with a warning (compression spec).
    fn compressors(&self, warnings: &mut Vec<String>) -> Result<Vec<Compressor>> {
        let mut compressors = Vec::new();
        for name in self.string()?.split(',') {
            match Compressor::from_name(name) {
                // noop is the wire's "uncompressed" id, not something a server negotiates.
                Some(Compressor::Noop) | None => warnings.push(format!(
                    "compressor {} ignored: not one of snappy, zlib, zstd",
                    self.mention(name)
                )),
                Some(compressor) if !compressors.contains(&compressor) => compressors.push(compressor),
                Some(_) => {}
            }
        }
        Ok(compressors)
    }

    /// An SRV service name per RFC 6335 (letters, digits and inner single hyphens, at least
    /// one letter), allowed up to 62 characters as the Initial DNS Seedlist Discovery spec
    /// permits.
    fn service_name(&self) -> Result<String> {
        let name = self.string()?;
        let problem = if name.len() > 62 {
            Some("is longer than 62 characters")
        } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Some("may only hold letters, digits and '-'")
        } else if !name.bytes().any(|b| b.is_ascii_alphabetic()) {
            Some("needs at least one letter")
        } else if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
            Some("cannot start or end with '-' or hold \"--\"")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(self.error(format!("is not an SRV service name: it {problem}"))),
            None => Ok(name),
        }
    }
}

/// Mechanism properties whose value is a secret.
pub(super) fn is_secret_property(name: &str) -> bool {
    name == "AWS_SESSION_TOKEN"
}

/// Every option key mongowire reads, plus the SOCKS5 options it recognises only to ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    AppName,
    AuthMechanism,
    AuthMechanismProperties,
    AuthSource,
    Compressors,
    ConnectTimeoutMs,
    DirectConnection,
    EnableOverloadRetargeting,
    HeartbeatFrequencyMs,
    Journal,
    LoadBalanced,
    LocalThresholdMs,
    MaxAdaptiveRetries,
    MaxConnecting,
    MaxIdleTimeMs,
    MaxPoolSize,
    MaxStalenessSeconds,
    MinPoolSize,
    ProxyHost,
    ProxyPassword,
    ProxyPort,
    ProxyUsername,
    ReadConcernLevel,
    ReadPreference,
    ReadPreferenceTags,
    ReplicaSet,
    RetryReads,
    RetryWrites,
    ServerMonitoringMode,
    ServerSelectionTimeoutMs,
    ServerSelectionTryOnce,
    SocketTimeoutMs,
    SrvMaxHosts,
    SrvServiceName,
    Ssl,
    TimeoutMs,
    Tls,
    TlsAllowInvalidCertificates,
    TlsAllowInvalidHostnames,
    TlsCaFile,
    TlsCertificateKeyFile,
    TlsCertificateKeyFilePassword,
    TlsDisableCertificateRevocationCheck,
    TlsDisableOcspEndpointCheck,
    TlsInsecure,
    W,
    WaitQueueTimeoutMs,
    WTimeoutMs,
    ZlibCompressionLevel,
}

const KEYS: [Key; 49] = [
    Key::AppName,
    Key::AuthMechanism,
    Key::AuthMechanismProperties,
    Key::AuthSource,
    Key::Compressors,
    Key::ConnectTimeoutMs,
    Key::DirectConnection,
    Key::EnableOverloadRetargeting,
    Key::HeartbeatFrequencyMs,
    Key::Journal,
    Key::LoadBalanced,
    Key::LocalThresholdMs,
    Key::MaxAdaptiveRetries,
    Key::MaxConnecting,
    Key::MaxIdleTimeMs,
    Key::MaxPoolSize,
    Key::MaxStalenessSeconds,
    Key::MinPoolSize,
    Key::ProxyHost,
    Key::ProxyPassword,
    Key::ProxyPort,
    Key::ProxyUsername,
    Key::ReadConcernLevel,
    Key::ReadPreference,
    Key::ReadPreferenceTags,
    Key::ReplicaSet,
    Key::RetryReads,
    Key::RetryWrites,
    Key::ServerMonitoringMode,
    Key::ServerSelectionTimeoutMs,
    Key::ServerSelectionTryOnce,
    Key::SocketTimeoutMs,
    Key::SrvMaxHosts,
    Key::SrvServiceName,
    Key::Ssl,
    Key::TimeoutMs,
    Key::Tls,
    Key::TlsAllowInvalidCertificates,
    Key::TlsAllowInvalidHostnames,
    Key::TlsCaFile,
    Key::TlsCertificateKeyFile,
    Key::TlsCertificateKeyFilePassword,
    Key::TlsDisableCertificateRevocationCheck,
    Key::TlsDisableOcspEndpointCheck,
    Key::TlsInsecure,
    Key::W,
    Key::WaitQueueTimeoutMs,
    Key::WTimeoutMs,
    Key::ZlibCompressionLevel,
];

impl Key {
    /// The spelling of the URI Options spec (the handshake spec spells `appname`; both match).
    fn name(self) -> &'static str {
        match self {
            Key::AppName => "appName",
            Key::AuthMechanism => "authMechanism",
            Key::AuthMechanismProperties => "authMechanismProperties",
            Key::AuthSource => "authSource",
            Key::Compressors => "compressors",
            Key::ConnectTimeoutMs => "connectTimeoutMS",
            Key::DirectConnection => "directConnection",
            Key::EnableOverloadRetargeting => "enableOverloadRetargeting",
            Key::HeartbeatFrequencyMs => "heartbeatFrequencyMS",
            Key::Journal => "journal",
            Key::LoadBalanced => "loadBalanced",
            Key::LocalThresholdMs => "localThresholdMS",
            Key::MaxAdaptiveRetries => "maxAdaptiveRetries",
            Key::MaxConnecting => "maxConnecting",
            Key::MaxIdleTimeMs => "maxIdleTimeMS",
            Key::MaxPoolSize => "maxPoolSize",
            Key::MaxStalenessSeconds => "maxStalenessSeconds",
            Key::MinPoolSize => "minPoolSize",
            Key::ProxyHost => "proxyHost",
            Key::ProxyPassword => "proxyPassword",
            Key::ProxyPort => "proxyPort",
            Key::ProxyUsername => "proxyUsername",
            Key::ReadConcernLevel => "readConcernLevel",
            Key::ReadPreference => "readPreference",
            Key::ReadPreferenceTags => "readPreferenceTags",
            Key::ReplicaSet => "replicaSet",
            Key::RetryReads => "retryReads",
            Key::RetryWrites => "retryWrites",
            Key::ServerMonitoringMode => "serverMonitoringMode",
            Key::ServerSelectionTimeoutMs => "serverSelectionTimeoutMS",
            Key::ServerSelectionTryOnce => "serverSelectionTryOnce",
            Key::SocketTimeoutMs => "socketTimeoutMS",
            Key::SrvMaxHosts => "srvMaxHosts",
            Key::SrvServiceName => "srvServiceName",
            Key::Ssl => "ssl",
            Key::TimeoutMs => "timeoutMS",
            Key::Tls => "tls",
            Key::TlsAllowInvalidCertificates => "tlsAllowInvalidCertificates",
            Key::TlsAllowInvalidHostnames => "tlsAllowInvalidHostnames",
            Key::TlsCaFile => "tlsCAFile",
            Key::TlsCertificateKeyFile => "tlsCertificateKeyFile",
            Key::TlsCertificateKeyFilePassword => "tlsCertificateKeyFilePassword",
            Key::TlsDisableCertificateRevocationCheck => "tlsDisableCertificateRevocationCheck",
            Key::TlsDisableOcspEndpointCheck => "tlsDisableOCSPEndpointCheck",
            Key::TlsInsecure => "tlsInsecure",
            Key::W => "w",
            Key::WaitQueueTimeoutMs => "waitQueueTimeoutMS",
            Key::WTimeoutMs => "wTimeoutMS",
            Key::ZlibCompressionLevel => "zlibCompressionLevel",
        }
    }

    fn from_name(name: &str) -> Option<Key> {
        KEYS.into_iter().find(|key| key.name().eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{assert_err, err, ok};
    use super::*;

    fn options(query: &str) -> UriOptions {
        ok(&format!("mongodb://example.com/?{query}")).options
    }

    fn options_err(query: &str, fragment: &str) {
        assert_err(&format!("mongodb://example.com/?{query}"), fragment);
    }

    fn warnings(query: &str) -> Vec<String> {
        ok(&format!("mongodb://example.com/?{query}")).warnings
    }

    fn ms(millis: u64) -> Option<Duration> {
        Some(Duration::from_millis(millis))
    }

    #[test]
    fn every_option_is_read_into_its_field() {
        let o = options(
            "appname=URI-OPTIONS-SPEC-TEST&connectTimeoutMS=20000&heartbeatFrequencyMS=5000\
             &localThresholdMS=3000&maxIdleTimeMS=50000&replicaSet=uri-options-spec\
             &retryWrites=true&retryReads=false&serverSelectionTimeoutMS=15000\
             &socketTimeoutMS=7500&timeoutMS=100&maxPoolSize=5&minPoolSize=3&maxConnecting=1\
             &waitQueueTimeoutMS=250&compressors=zstd,snappy&zlibCompressionLevel=4\
             &readConcernLevel=majority&w=5&wTimeoutMS=30000&journal=false\
             &serverSelectionTryOnce=false&serverMonitoringMode=poll&maxAdaptiveRetries=3\
             &enableOverloadRetargeting=true&tls=true&tlsCAFile=ca.pem\
             &tlsCertificateKeyFile=cert.pem&tlsCertificateKeyFilePassword=hunter2\
             &tlsAllowInvalidHostnames=true&tlsDisableOCSPEndpointCheck=false\
             &authSource=authSourceDB&readPreference=nearest&maxStalenessSeconds=120\
             &directConnection=false&loadBalanced=false",
        );
        assert_eq!(o.app_name.as_deref(), Some("URI-OPTIONS-SPEC-TEST"));
        assert_eq!(o.connect_timeout, ms(20_000));
        assert_eq!(o.heartbeat_frequency, ms(5_000));
        assert_eq!(o.local_threshold, ms(3_000));
        assert_eq!(o.max_idle_time, ms(50_000));
        assert_eq!(o.replica_set.as_deref(), Some("uri-options-spec"));
        assert_eq!(o.retry_writes, Some(true));
        assert_eq!(o.retry_reads, Some(false));
        assert_eq!(o.server_selection_timeout, ms(15_000));
        assert_eq!(o.socket_timeout, ms(7_500));
        assert_eq!(o.timeout, ms(100));
        assert_eq!(o.max_pool_size, Some(5));
        assert_eq!(o.min_pool_size, Some(3));
        assert_eq!(o.max_connecting, Some(1));
        assert_eq!(o.wait_queue_timeout, ms(250));
        assert_eq!(o.compressors, Some(vec![Compressor::Zstd, Compressor::Snappy]));
        assert_eq!(o.zlib_compression_level, Some(4));
        assert_eq!(o.read_concern_level, Some(ReadConcernLevel::Majority));
        assert_eq!(o.w, Some(Acknowledgment::Nodes(5)));
        assert_eq!(o.w_timeout, ms(30_000));
        assert_eq!(o.journal, Some(false));
        assert_eq!(o.server_selection_try_once, Some(false));
        assert_eq!(o.server_monitoring_mode, Some(ServerMonitoringMode::Poll));
        assert_eq!(o.max_adaptive_retries, Some(3));
        assert_eq!(o.enable_overload_retargeting, Some(true));
        assert_eq!(o.tls, Some(true));
        assert_eq!(o.tls_ca_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(o.tls_certificate_key_file, Some(PathBuf::from("cert.pem")));
        assert_eq!(
            o.tls_certificate_key_file_password.as_ref().unwrap().expose(),
            "hunter2"
        );
        assert!(!format!("{o:?}").contains("hunter2"));
        assert_eq!(o.tls_allow_invalid_hostnames, Some(true));
        assert_eq!(o.tls_disable_ocsp_endpoint_check, Some(false));
        assert_eq!(o.auth_source.as_deref(), Some("authSourceDB"));
        assert_eq!(o.read_preference, Some(ReadPreferenceMode::Nearest));
        assert_eq!(o.max_staleness, Some(Duration::from_secs(120)));
        assert_eq!(o.direct_connection, Some(false));
        assert_eq!(o.load_balanced, Some(false));
        assert_eq!(
            o.read_concern(),
            Some(ReadConcern {
                level: ReadConcernLevel::Majority
            })
        );
        assert_eq!(
            o.write_concern(),
            Some(WriteConcern {
                w: Some(Acknowledgment::Nodes(5)),
                w_timeout: ms(30_000),
                journal: Some(false),
            })
        );
        let unset = options("");
        assert_eq!(unset, UriOptions::default());
        assert_eq!(unset.read_preference(), None);
        assert_eq!(unset.read_concern(), None);
        assert_eq!(unset.write_concern(), None);
    }

    #[test]
    fn keys_match_case_insensitively_and_values_are_decoded() {
        let o = options("REPLICASET=rs0&ConnectTimeoutms=5&APPNAME=my%20app%26co&readpreference=SECONDARY");
        assert_eq!(o.replica_set.as_deref(), Some("rs0"));
        assert_eq!(o.connect_timeout, ms(5));
        assert_eq!(o.app_name.as_deref(), Some("my app&co"));
        assert_eq!(o.read_preference, Some(ReadPreferenceMode::Secondary));
        assert_eq!(
            options("tlsCAFile=%2Fetc%2Fssl%2Fca.pem").tls_ca_file,
            Some(PathBuf::from("/etc/ssl/ca.pem"))
        );
        options_err(
            "replicaSet=a%zz",
            "the value of replicaSet has a '%' at byte 35 that does not start a %XX escape",
        );
        options_err("appName=%C3", "the value of appName is not UTF-8 once decoded");
    }

    #[test]
    fn unknown_and_unsupported_options_are_warnings() {
        assert_eq!(warnings("foo=bar"), ["unknown option \"foo\" ignored"]);
        assert_eq!(options("foo=bar"), UriOptions::default());
        assert_eq!(
            warnings("connectTimeout=5"),
            ["unknown option \"connectTimeout\" ignored; did you mean connectTimeoutMS?"]
        );
        assert_eq!(warnings("fsync=ifPossible"), ["unknown option \"fsync\" ignored"]);
        // A deprecated spelling is unknown here; the replacement still applies.
        let o = ok("mongodb://example.com/?wtimeout=5&wtimeoutMS=10");
        assert_eq!(o.options.w_timeout, ms(10));
        assert_eq!(
            o.warnings,
            ["unknown option \"wtimeout\" ignored; did you mean wTimeoutMS?"]
        );
        let proxied = ok("mongodb://rs1,rs2/?proxyHost=localhost&proxyPort=1080&proxyUsername=u&proxyPassword=Secret5");
        assert_eq!(proxied.warnings.len(), 4);
        assert_eq!(
            proxied.warnings[0],
            "option proxyHost ignored: mongowire does not support SOCKS5 proxies"
        );
        assert!(!proxied.redacted().contains("Secret5"));
        assert!(!format!("{:?}", proxied.warnings).contains("Secret5"));
    }

    #[test]
    fn repeated_keys_keep_the_last_with_a_warning() {
        let parsed = ok("mongodb://example.com/?replicaSet=test&replicaSet=other");
        assert_eq!(parsed.options.replica_set.as_deref(), Some("other"));
        assert_eq!(
            parsed.warnings,
            ["option replicaSet is given more than once; the last one is used"]
        );
        assert!(
            warnings("tls=true&ssl=true&TLS=true").is_empty(),
            "agreeing tls/ssl do not warn"
        );
        assert!(warnings("readPreference=secondary&readPreferenceTags=a:1&readPreferenceTags=").is_empty());
        // An empty repeat is ignored rather than erasing the earlier value.
        let o = ok("mongodb://example.com/?maxPoolSize=7&maxPoolSize=");
        assert_eq!(o.options.max_pool_size, Some(7));
        assert_eq!(o.warnings.len(), 2);
    }

    #[test]
    fn empty_values() {
        let parsed = ok("mongodb://localhost/?maxIdleTimeMS=&journal=");
        assert_eq!(parsed.options.max_idle_time, None);
        assert_eq!(parsed.options.journal, None);
        assert_eq!(
            parsed.warnings,
            [
                "option maxIdleTimeMS has an empty value; ignored",
                "option journal has an empty value; ignored"
            ]
        );
        for key in [
            "replicaSet",
            "appName",
            "authSource",
            "w",
            "tlsCAFile",
            "readConcernLevel",
            "compressors",
            "authMechanism",
        ] {
            options_err(&format!("{key}="), &format!("option {key} needs a value"));
        }
        assert_eq!(
            options("tlsCertificateKeyFilePassword=")
                .tls_certificate_key_file_password
                .unwrap()
                .expose(),
            ""
        );
    }

    #[test]
    fn booleans() {
        assert_eq!(options("journal=TRUE").journal, Some(true));
        assert_eq!(options("retryReads=false").retry_reads, Some(false));
        let legacy = ok("mongodb://h/?journal=1&retryWrites=n");
        assert_eq!(legacy.options.journal, Some(true));
        assert_eq!(legacy.options.retry_writes, Some(false));
        assert_eq!(
            legacy.warnings,
            [
                "deprecated boolean value for journal; write journal=true",
                "deprecated boolean value for retryWrites; write retryWrites=false"
            ]
        );
        for key in [
            "journal",
            "retryWrites",
            "retryReads",
            "directConnection",
            "loadBalanced",
            "serverSelectionTryOnce",
            "tlsInsecure",
            "tlsAllowInvalidCertificates",
            "tlsAllowInvalidHostnames",
            "enableOverloadRetargeting",
        ] {
            options_err(
                &format!("{key}=invalid"),
                &format!("\"{key}=invalid\" is not a boolean; expected true or false"),
            );
        }
    }

    #[test]
    fn durations_and_their_ranges() {
        assert_eq!(
            err("mongodb://example.com/?connectTimeoutMS=-2"),
            "invalid connection string: \"connectTimeoutMS=-2\" is out of range: must be 0 or more"
        );
        options_err(
            "connectTimeoutMS=invalid",
            "\"connectTimeoutMS=invalid\" is not a whole number",
        );
        options_err("connectTimeoutMS=1.5", "is not a whole number");
        options_err("connectTimeoutMS=2147483648", "is out of range");
        assert_eq!(
            options("connectTimeoutMS=2147483647").connect_timeout,
            ms(2_147_483_647)
        );
        assert_eq!(options("connectTimeoutMS=0").connect_timeout, Some(Duration::ZERO));
        assert_eq!(options("socketTimeoutMS=0").socket_timeout, Some(Duration::ZERO));
        options_err("socketTimeoutMS=-2", "must be 0 or more");
        options_err(
            "heartbeatFrequencyMS=499",
            "\"heartbeatFrequencyMS=499\" is out of range: must be at least 500",
        );
        options_err("heartbeatFrequencyMS=-2", "must be at least 500");
        assert_eq!(options("heartbeatFrequencyMS=500").heartbeat_frequency, ms(500));
        assert_eq!(options("localThresholdMS=0").local_threshold, Some(Duration::ZERO));
        options_err("localThresholdMS=-2", "must be 0 or more");
        options_err("serverSelectionTimeoutMS=0", "must be 1 or more");
        options_err("serverSelectionTimeoutMS=-2", "must be 1 or more");
        options_err("maxIdleTimeMS=-2", "must be 0 or more");
        options_err("waitQueueTimeoutMS=0", "must be 1 or more");
        // timeoutMS and wTimeoutMS are 64-bit.
        assert_eq!(options("timeoutMS=0").timeout, Some(Duration::ZERO));
        assert_eq!(options("timeoutMS=1099511627776").timeout, ms(1 << 40));
        options_err("timeoutMS=-2", "must be 0 or more");
        options_err("timeoutMS=invalid", "is not a whole number");
        assert_eq!(options("wTimeoutMS=8589934592").w_timeout, ms(1 << 33));
        options_err("wTimeoutMS=-500", "must be 0 or more");
    }

    #[test]
    fn pool_sizes() {
        assert_eq!(options("maxPoolSize=0").max_pool_size, Some(0));
        assert_eq!(options("minPoolSize=0").min_pool_size, Some(0));
        options_err("maxPoolSize=-1", "must be 0 or more");
        options_err(
            "maxConnecting=0",
            "\"maxConnecting=0\" is out of range: must be 1 or more",
        );
        options_err("maxConnecting=-1", "must be 1 or more");
        options_err(
            "minPoolSize=10&maxPoolSize=5",
            "minPoolSize=10 is larger than maxPoolSize=5",
        );
        assert_eq!(options("minPoolSize=10&maxPoolSize=0").min_pool_size, Some(10));
        options_err("maxAdaptiveRetries=-5", "must be 0 or more");
        assert_eq!(options("maxAdaptiveRetries=0").max_adaptive_retries, Some(0));
    }

    #[test]
    fn compressors() {
        let o = options("compressors=zlib&zlibCompressionLevel=9");
        assert_eq!(o.compressors, Some(vec![Compressor::Zlib]));
        assert_eq!(o.zlib_compression_level, Some(9));
        assert_eq!(
            options("compressors=snappy,ZLIB").compressors,
            Some(vec![Compressor::Snappy, Compressor::Zlib])
        );
        let parsed = ok("mongodb://h/?compressors=zstd,lz4,snappy,noop,zstd");
        assert_eq!(
            parsed.options.compressors,
            Some(vec![Compressor::Zstd, Compressor::Snappy])
        );
        assert_eq!(
            parsed.warnings,
            [
                "compressor \"lz4\" ignored: not one of snappy, zlib, zstd",
                "compressor \"noop\" ignored: not one of snappy, zlib, zstd"
            ]
        );
        assert_eq!(options("compressors=lz4").compressors, Some(vec![]));
        assert_eq!(options("zlibCompressionLevel=-1").zlib_compression_level, Some(-1));
        options_err(
            "compressors=zlib&zlibCompressionLevel=-2",
            "\"zlibCompressionLevel=-2\" is out of range: must be -1 to 9",
        );
        options_err("compressors=zlib&zlibCompressionLevel=10", "must be -1 to 9");
        options_err("compressors=zlib&zlibCompressionLevel=invalid", "is not a whole number");
    }

    #[test]
    fn write_concern() {
        assert_eq!(options("w=majority").w, Some(Acknowledgment::Majority));
        assert_eq!(options("w=0").w, Some(Acknowledgment::Nodes(0)));
        assert_eq!(
            options("w=arbitraryButStillValid").w,
            Some(Acknowledgment::Custom("arbitraryButStillValid".into()))
        );
        options_err(
            "w=-2",
            "\"w=-2\" is out of range: a number of members must be 0 to 2147483647",
        );
        options_err("w=2147483648", "is out of range");
        options_err(
            "w=0&journal=true",
            "w=0 asks for no acknowledgment, which contradicts journal=true",
        );
        assert_eq!(
            options("w=0&journal=false&wTimeoutMS=500").write_concern(),
            Some(WriteConcern {
                w: Some(Acknowledgment::Nodes(0)),
                w_timeout: ms(500),
                journal: Some(false)
            })
        );
        assert_eq!(
            options("journal=true").write_concern(),
            Some(WriteConcern {
                w: None,
                w_timeout: None,
                journal: Some(true)
            })
        );
    }

    #[test]
    fn read_concern_keeps_unknown_levels() {
        assert_eq!(
            options("readConcernLevel=local").read_concern_level,
            Some(ReadConcernLevel::Local)
        );
        assert_eq!(
            options("readConcernLevel=arbitraryButStillValid").read_concern(),
            Some(ReadConcern {
                level: ReadConcernLevel::Other("arbitraryButStillValid".into())
            })
        );
    }

    #[test]
    fn read_preference_mode_tags_and_staleness() {
        let o = options(
            "readPreference=primaryPreferred&readPreferenceTags=dc:ny,rack:1\
             &maxStalenessSeconds=120&readPreferenceTags=dc:ny",
        );
        assert_eq!(
            o.read_preference(),
            Some(ReadPreference {
                mode: ReadPreferenceMode::PrimaryPreferred,
                tag_sets: vec![
                    TagSet::from([("dc".into(), "ny".into()), ("rack".into(), "1".into())]),
                    TagSet::from([("dc".into(), "ny".into())]),
                ],
                max_staleness: Some(Duration::from_secs(120)),
            })
        );
        let case_kept = options("readPreference=secondary&readPreferenceTags=dc:NY");
        assert_eq!(
            case_kept.read_preference_tags,
            [TagSet::from([("dc".into(), "NY".into())])]
        );
        let with_empty = options("readPreference=secondary&readPreferenceTags=dc:ny&readPreferenceTags=");
        assert_eq!(
            with_empty.read_preference_tags,
            [TagSet::from([("dc".into(), "ny".into())]), TagSet::new()]
        );
        // The empty tag set matches any member, so it is fine with primary.
        assert_eq!(options("readPreferenceTags=").read_preference_tags, [TagSet::new()]);
        assert_eq!(
            options("readPreference=secondary").read_preference(),
            Some(ReadPreference::with_mode(ReadPreferenceMode::Secondary))
        );
        options_err(
            "readPreference=secondary&readPreferenceTags=invalid",
            "\"readPreferenceTags=invalid\" has no ':' in entry 1",
        );
        options_err(
            "readPreference=secondary&readPreferenceTags=dc:ny,:x",
            "has an empty name in entry 2",
        );
        assert_eq!(
            options("readPreference=secondary&readPreferenceTags=dc:ny,DC:sf").read_preference_tags[0].len(),
            2,
            "tag names are case-sensitive"
        );
        options_err(
            "readPreference=secondary&readPreferenceTags=dc:ny,dc:sf",
            "gives \"dc\" twice (entry 2)",
        );
        options_err(
            "readPreferenceTags=dc:ny",
            "readPreferenceTags need a readPreference other than primary",
        );
        options_err("readPreference=primary&readPreferenceTags=dc:ny", "other than primary");
        options_err(
            "readPreference=any",
            "\"readPreference=any\" is not a read preference mode",
        );
    }

    #[test]
    fn max_staleness() {
        assert_eq!(
            options("readPreference=nearest&maxStalenessSeconds=90").max_staleness,
            Some(Duration::from_secs(90))
        );
        let unbounded = options("readPreference=secondary&maxStalenessSeconds=-1");
        assert_eq!(unbounded.max_staleness, None);
        assert_eq!(
            options("maxStalenessSeconds=-1").max_staleness,
            None,
            "-1 is fine with primary"
        );
        options_err(
            "maxStalenessSeconds=120",
            "maxStalenessSeconds needs a readPreference other than primary",
        );
        for bad in ["0", "89", "-2"] {
            options_err(
                &format!("readPreference=secondary&maxStalenessSeconds={bad}"),
                "is out of range: must be -1 (no bound) or at least 90",
            );
        }
        options_err("maxStalenessSeconds=invalid", "is not a whole number");
    }

    #[test]
    fn tls_conflicts() {
        options_err(
            "tls=false&ssl=true",
            "ssl=true conflicts with tls=false given before it",
        );
        options_err("tls=true&ssl=false", "ssl=false conflicts with tls=true");
        options_err("ssl=false&tls=true", "tls=true conflicts with ssl=false");
        options_err("tls=true&tls=false", "tls=false conflicts with tls=true");
        assert_eq!(options("ssl=false&tls=false").tls, Some(false));
        assert_eq!(options("ssl=true").tls, Some(true));
        options_err("tls=false&tlsCAFile=ca.pem", "tls=false conflicts with tlsCAFile");
        options_err("ssl=false&tlsInsecure=false", "tls=false conflicts with tlsInsecure");
        let names = [
            "tlsInsecure",
            "tlsAllowInvalidCertificates",
            "tlsAllowInvalidHostnames",
            "tlsDisableOCSPEndpointCheck",
            "tlsDisableCertificateRevocationCheck",
        ];
        for a in names {
            for b in names {
                let allowed =
                    a == b || [a, b].contains(&"tlsAllowInvalidHostnames") && ![a, b].contains(&"tlsInsecure");
                for (x, y) in [
                    ("true", "true"),
                    ("true", "false"),
                    ("false", "true"),
                    ("false", "false"),
                ] {
                    let query = format!("tls=true&{a}={x}&{b}={y}");
                    if allowed {
                        options(&query);
                    } else {
                        let message = err(&format!("mongodb://h/?{query}"));
                        assert!(message.contains("cannot both be given"), "{query}: {message}");
                        assert!(message.contains(a) && message.contains(b), "{query}: {message}");
                    }
                }
            }
        }
        let o = options("tls=true&tlsDisableCertificateRevocationCheck=true&tlsAllowInvalidHostnames=true");
        assert_eq!(o.tls_disable_certificate_revocation_check, Some(true));
        assert_eq!(options("tlsInsecure=true").tls_insecure, Some(true));
        assert_eq!(
            options("tlsAllowInvalidCertificates=true").tls_allow_invalid_certificates,
            Some(true)
        );
    }

    #[test]
    fn app_name_limit_and_monitoring_mode() {
        assert_eq!(
            options(&format!("appName={}", "a".repeat(128)))
                .app_name
                .map(|n| n.len()),
            Some(128)
        );
        options_err(
            &format!("appName={}", "é".repeat(65)),
            "is 130 bytes long; the handshake allows at most 128",
        );
        for (text, mode) in [
            ("auto", ServerMonitoringMode::Auto),
            ("stream", ServerMonitoringMode::Stream),
            ("POLL", ServerMonitoringMode::Poll),
        ] {
            assert_eq!(
                options(&format!("serverMonitoringMode={text}")).server_monitoring_mode,
                Some(mode)
            );
        }
        options_err(
            "serverMonitoringMode=invalid",
            "is not a monitoring mode; expected stream, poll or auto",
        );
    }

    #[test]
    fn load_balanced_rules() {
        assert_eq!(options("loadBalanced=true").load_balanced, Some(true));
        let o = options("loadBalanced=true&directConnection=false");
        assert_eq!((o.load_balanced, o.direct_connection), (Some(true), Some(false)));
        options_err(
            "loadBalanced=true&directConnection=true",
            "loadBalanced=true cannot be used with directConnection=true",
        );
        options_err(
            "loadBalanced=true&replicaSet=replset",
            "loadBalanced=true cannot be used with replicaSet",
        );
        // A legacy boolean spelling still counts, with a warning.
        let legacy = ok("mongodb://example.com/?loadBalanced=1");
        assert_eq!(legacy.options.load_balanced, Some(true));
        assert_eq!(legacy.warnings.len(), 1);
        options_err("directConnection=invalid", "is not a boolean");
    }

    #[test]
    fn srv_options() {
        let srv = |query: &str| ok(&format!("mongodb+srv://test1.test.build.10gen.cc/?{query}")).options;
        let srv_err = |query: &str, fragment: &str| {
            assert_err(&format!("mongodb+srv://test1.test.build.10gen.cc/?{query}"), fragment)
        };
        assert_eq!(
            srv("srvServiceName=customname").srv_service_name.as_deref(),
            Some("customname")
        );
        assert_eq!(srv("srvMaxHosts=2").srv_max_hosts, Some(2));
        srv_err(
            "srvMaxHosts=-1",
            "\"srvMaxHosts=-1\" is out of range: must be 0 or more",
        );
        srv_err("srvMaxHosts=foo", "is not a whole number");
        srv_err(
            "srvMaxHosts=2&replicaSet=foo",
            "srvMaxHosts cannot be used with replicaSet",
        );
        srv_err(
            "srvMaxHosts=2&loadBalanced=true",
            "srvMaxHosts cannot be used with loadBalanced=true",
        );
        let o = srv("srvMaxHosts=2&loadBalanced=false");
        assert_eq!((o.srv_max_hosts, o.load_balanced), (Some(2), Some(false)));
        assert_eq!(srv("srvMaxHosts=0&replicaSet=foo").replica_set.as_deref(), Some("foo"));
        assert_eq!(srv("srvMaxHosts=0&loadBalanced=true").load_balanced, Some(true));
        assert_eq!(
            srv(&format!("srvServiceName={}", "a".repeat(62)))
                .srv_service_name
                .map(|n| n.len()),
            Some(62)
        );
        for (name, problem) in [
            ("a_b", "may only hold letters, digits and '-'"),
            ("-ab", "cannot start or end with '-'"),
            ("ab-", "cannot start or end with '-'"),
            ("a--b", "cannot start or end with '-' or hold \"--\""),
            ("123", "needs at least one letter"),
        ] {
            srv_err(
                &format!("srvServiceName={name}"),
                &format!("is not an SRV service name: it {problem}"),
            );
        }
        srv_err(
            &format!("srvServiceName={}", "a".repeat(63)),
            "is longer than 62 characters",
        );
    }

    #[test]
    fn mechanism_properties() {
        let parsed = ok("mongodb://example.com/?authMechanism=MONGODB-OIDC\
             &authMechanismProperties=TOKEN_RESOURCE:mongodb://test-cluster,environment:azure");
        let properties = parsed.credential.unwrap().mechanism_properties;
        assert_eq!(
            properties.get("TOKEN_RESOURCE").map(String::as_str),
            Some("mongodb://test-cluster")
        );
        assert_eq!(
            properties.get("ENVIRONMENT").map(String::as_str),
            Some("azure"),
            "names upper-cased"
        );
        let encoded = ok("mongodb://user@localhost/?authMechanism=MONGODB-OIDC\
             &authMechanismProperties=ENVIRONMENT:azure,TOKEN_RESOURCE:abcd%25ef%3Ag%26hi");
        assert_eq!(
            encoded.credential.unwrap().mechanism_properties["TOKEN_RESOURCE"],
            "abcd%ef:g&hi"
        );
        // The value is decoded before it is split, so an encoded ',' still splits it.
        assert_err(
            "mongodb://localhost?authMechanism=MONGODB-OIDC\
             &authMechanismProperties=TOKEN_RESOURCE:mongodb://host1%2Chost2,ENVIRONMENT:azure",
            "the value of authMechanismProperties has no ':' in entry 2",
        );
        assert_err(
            "mongodb://h/?authMechanism=GSSAPI&authMechanismProperties=SERVICE_NAME:a,service_name:b",
            "the value of authMechanismProperties gives \"service_name\" twice (entry 2)",
        );
    }
}
