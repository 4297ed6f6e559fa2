//! Policy bundles: a policy to share with another cluster or team.
//!
//! A bundle is a [`PolicyDocument`] without what belongs to the cluster it
//! came from: no zone, identity or rule numbers (the receiving cluster
//! allocates its own) and no alert sinks (they are where *this* cluster's
//! alerts go, with their credentials). [`PolicyDocument::merged_with`]
//! adds a bundle to a cluster's policy without removing anything.

use crate::document::{DocRule, PolicyDocument};

impl PolicyDocument {
    /// This document as a bundle for another cluster: numbers and sinks
    /// left out, so it carries no secret and no number of this cluster.
    pub fn bundle(&self) -> PolicyDocument {
        let mut bundle = self.clone();
        bundle.sinks.clear();
        for zone in &mut bundle.zones {
            zone.id = None;
        }
        for identity in &mut bundle.identities {
            identity.id = None;
        }
        for rule in &mut bundle.rules {
            rule.id = None;
        }
        bundle
    }

    /// This document with `bundle` added: zones, identities, identity rules
    /// and fingerprints of the bundle replace those of the same name (or
    /// digest) and are added otherwise, keeping this document's numbers;
    /// each bundle rule is added unless a rule saying exactly the same
    /// exists. Nothing is removed, and the settings and sinks stay this
    /// document's.
    pub fn merged_with(&self, bundle: &PolicyDocument) -> PolicyDocument {
        let mut merged = self.clone();
        for zone in &bundle.zones {
            match merged.zones.iter_mut().find(|z| z.name == zone.name) {
                Some(current) => {
                    current.mode = zone.mode;
                    current.description = zone.description.clone();
                }
                None => merged.zones.push(zone.clone()),
            }
        }
        for identity in &bundle.identities {
            let known = merged.identities.iter().any(|i| {
                (&i.zone, &i.app, &i.service) == (&identity.zone, &identity.app, &identity.service)
            });
            if !known {
                let mut identity = identity.clone();
                // The bundle's number may be taken here.
                identity.id = None;
                merged.identities.push(identity);
            }
        }
        for rule in &bundle.identity_rules {
            match merged
                .identity_rules
                .iter_mut()
                .find(|r| r.name == rule.name)
            {
                Some(current) => *current = rule.clone(),
                None => merged.identity_rules.push(rule.clone()),
            }
        }
        for fp in &bundle.fingerprints {
            match merged
                .fingerprints
                .iter_mut()
                .find(|f| f.sha256 == fp.sha256)
            {
                Some(current) => *current = fp.clone(),
                None => merged.fingerprints.push(fp.clone()),
            }
        }
        for rule in &bundle.rules {
            let same = |r: &DocRule| {
                DocRule {
                    id: None,
                    ..r.clone()
                } == DocRule {
                    id: None,
                    ..rule.clone()
                }
            };
            if !merged.rules.iter().any(same) {
                merged.rules.push(DocRule {
                    id: None,
                    ..rule.clone()
                });
            }
        }
        for zone in &mut merged.zones {
            if !self.zones.iter().any(|z| z.name == zone.name) {
                zone.id = None;
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::{self, sample};
    use crate::{diff, Command, Mode, PolicyDocument, Secrets};

    #[test]
    fn a_bundle_carries_no_numbers_or_sinks_and_merges_without_removing() {
        let source = PolicyDocument::export(&sample(), Secrets::Reveal);
        let bundle = source.bundle();
        let text = bundle.to_toml().expect("toml");
        assert!(!text.contains("id ="), "{text}");
        assert!(bundle.sinks.is_empty());

        // Another cluster with a zone of its own and a different prod mode.
        let mut other = crate::ClusterState::new();
        Command::batch(vec![
            fixtures::zone("ops", Mode::Enforce),
            fixtures::zone("prod", Mode::Learn),
            fixtures::define("ops", "tool", "main"),
        ])
        .apply(&mut other)
        .expect("valid");
        let current = PolicyDocument::export(&other, Secrets::Redact);
        let merged = current.merged_with(&bundle);
        let import = merged.import(&other).expect("merges cleanly");
        import.apply(&mut other).expect("applies");
        assert!(other.zones.contains_key("ops"), "nothing is removed");
        assert_eq!(other.zones["prod"].mode, Mode::Enforce);
        assert_eq!(other.rules.len(), 1);
        assert!(!diff(&current, &merged).is_empty());

        // Merging the same bundle again changes nothing.
        let again = PolicyDocument::export(&other, Secrets::Redact);
        assert!(diff(&again, &again.merged_with(&bundle)).is_empty());
    }
}
