//! `runOnRequirements`, `schemaVersion` and the version strings both use.

use bson::{Bson, Document};

use super::{Failure, show};

/// A `major.minor.patch` version; missing components are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(pub(crate) u32, pub(crate) u32, pub(crate) u32);

impl Version {
    /// Parses "4", "4.2" or "4.2.1"; anything after the third component (a pre-release suffix) is
    /// dropped, as the format says.
    pub(crate) fn parse(text: &str) -> Result<Version, Failure> {
        let bad = || Failure::failed(format!("invalid version string {text:?}"));
        let mut parts = [0_u32; 3];
        for (slot, part) in parts.iter_mut().zip(text.split('.')) {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            *slot = digits.parse().map_err(|_| bad())?;
        }
        let [major, minor, patch] = parts;
        Ok(Version(major, minor, patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The newest schema version this runner implements (for the subset it covers).
pub(crate) const SUPPORTED_SCHEMA: Version = Version(1, 7, 0);

/// Whether a file of `schema_version` may be run: same major version, not newer.
pub(crate) fn schema_supported(schema_version: &str) -> Result<bool, Failure> {
    let version = Version::parse(schema_version)?;
    Ok(version.0 == SUPPORTED_SCHEMA.0 && version <= SUPPORTED_SCHEMA)
}

/// What the deployment under test is, as the requirements see it.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    /// From `buildInfo.versionArray`.
    pub(crate) version: Version,
    /// The format's topology name: `single`, `replicaset`, `sharded` or `load-balanced`.
    pub(crate) topology: &'static str,
    /// Whether the connection string carries credentials.
    pub(crate) auth: bool,
}

/// `Ok(None)` when at least one requirement of the list is met, else why none is.
pub(crate) fn unmet(requirements: &[Bson], deployment: &Deployment) -> Result<Option<String>, Failure> {
    let mut reasons = Vec::new();
    for requirement in requirements {
        let Bson::Document(requirement) = requirement else {
            return Err(Failure::failed(format!(
                "runOnRequirement {} is not a document",
                show(requirement)
            )));
        };
        match unmet_one(requirement, deployment)? {
            None => return Ok(None),
            Some(reason) => reasons.push(reason),
        }
    }
    Ok(Some(reasons.join("; or ")))
}

fn unmet_one(requirement: &Document, deployment: &Deployment) -> Result<Option<String>, Failure> {
    let mut reasons = Vec::new();
    for (key, value) in requirement {
        let reason = match (key.as_str(), value) {
            ("minServerVersion", Bson::String(min)) => (deployment.version < Version::parse(min)?)
                .then(|| format!("server {} is below minServerVersion {min}", deployment.version)),
            ("maxServerVersion", Bson::String(max)) => (deployment.version > Version::parse(max)?)
                .then(|| format!("server {} is above maxServerVersion {max}", deployment.version)),
            ("topologies", Bson::Array(topologies)) => {
                // "sharded" also means "sharded-replicaset"; the deployments here are never sharded.
                let listed = topologies.iter().any(|t| t.as_str() == Some(deployment.topology));
                (!listed).then(|| format!("topology {} is not one of {}", deployment.topology, show(value)))
            }
            // Not Atlas Serverless: "forbid" and "allow" are met, "require" is not.
            ("serverless", Bson::String(mode)) => match mode.as_str() {
                "forbid" | "allow" => None,
                "require" => Some("needs Atlas Serverless".to_owned()),
                other => return Err(Failure::failed(format!("serverless: unknown value {other:?}"))),
            },
            ("auth", Bson::Boolean(wanted)) => (*wanted != deployment.auth)
                .then(|| format!("needs authentication {}", if *wanted { "enabled" } else { "disabled" })),
            ("minServerVersion" | "maxServerVersion" | "topologies" | "serverless" | "auth", _) => {
                return Err(Failure::failed(format!(
                    "runOnRequirement {key}: bad value {}",
                    show(value)
                )));
            }
            (other, _) => return Err(Failure::unsupported(format!("runOnRequirement {other}"))),
        };
        reasons.extend(reason);
    }
    Ok((!reasons.is_empty()).then(|| reasons.join(", ")))
}

#[cfg(test)]
mod tests {
    use bson::bson;

    use super::*;

    fn rs(version: Version) -> Deployment {
        Deployment {
            version,
            topology: "replicaset",
            auth: false,
        }
    }

    #[test]
    fn versions_compare_numerically_and_drop_suffixes() {
        assert!(Version::parse("4.0.10").unwrap() > Version::parse("4.0.9").unwrap());
        assert_eq!(Version::parse("3.6").unwrap(), Version(3, 6, 0));
        assert_eq!(Version::parse("4.9.0-alpha4-271-g7d5cf02").unwrap(), Version(4, 9, 0));
        assert!(Version::parse("four").is_err());
    }

    #[test]
    fn schema_versions_of_the_same_major_up_to_ours_are_accepted() {
        assert!(schema_supported("1.4").unwrap());
        assert!(schema_supported("1.7").unwrap());
        assert!(!schema_supported("1.8").unwrap());
        assert!(!schema_supported("2.0").unwrap());
    }

    #[test]
    fn one_met_requirement_is_enough() {
        let deployment = rs(Version(7, 0, 15));
        let list = [
            bson!({ "minServerVersion": "4.2", "maxServerVersion": "4.2.99" }),
            bson!({ "minServerVersion": "6.0", "topologies": ["replicaset", "sharded"], "serverless": "forbid" }),
        ];
        assert_eq!(unmet(&list, &deployment).unwrap(), None);
        let reason = unmet(&list[..1], &deployment).unwrap().unwrap();
        assert_eq!(reason, "server 7.0.15 is above maxServerVersion 4.2.99");
        let reason = unmet(&[bson!({ "topologies": ["single"] })], &deployment)
            .unwrap()
            .unwrap();
        assert_eq!(reason, "topology replicaset is not one of [\"single\"]");
        assert!(matches!(
            unmet(&[bson!({ "csfle": true })], &deployment),
            Err(Failure::Unsupported(_))
        ));
    }
}
