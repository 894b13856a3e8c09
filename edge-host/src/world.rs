//! The WIT world in `wit/` that every edge component must fit.
//!
//! Checked before instantiation so a component that imports something the
//! world does not offer (say `spin:variables`) is refused at start-up with a
//! message naming the component and the import, instead of failing later on
//! some other runtime.

use std::path::Path;

use anyhow::Context as _;
use semver::Version;
use wit_parser::{Resolve, WorldItem, WorldKey};

/// An interface name such as `wasi:http/types@0.2.4`.
#[derive(Debug, Clone, PartialEq)]
struct InterfaceName {
    /// `namespace:package/interface`
    path: String,
    version: Option<Version>,
}

impl InterfaceName {
    fn parse(name: &str) -> Self {
        match name.split_once('@') {
            Some((path, version)) => Self { path: path.to_owned(), version: Version::parse(version).ok() },
            None => Self { path: name.to_owned(), version: None },
        }
    }

    /// Whether a host offering `self` can satisfy a guest asking for `wanted`:
    /// same interface, same semver-compatible track, and the host at least
    /// as new. A pre-release (a proposal's snapshot) matches only itself.
    fn satisfies(&self, wanted: &InterfaceName) -> bool {
        if self.path != wanted.path {
            return false;
        }
        match (&self.version, &wanted.version) {
            (Some(have), Some(want)) if !have.pre.is_empty() || !want.pre.is_empty() => have == want,
            (Some(have), Some(want)) => {
                let same_track = if have.major == 0 {
                    want.major == 0 && have.minor == want.minor
                } else {
                    have.major == want.major
                };
                same_track && have >= want
            }
            (None, None) => true,
            _ => false,
        }
    }
}

/// The imports and exports of the world the edge components target.
#[derive(Debug)]
pub struct EdgeWorld {
    name: String,
    imports: Vec<InterfaceName>,
    exports: Vec<InterfaceName>,
}

impl EdgeWorld {
    /// Loads `world` (or the package's only world) from a WIT directory with its `deps/`.
    pub fn load(dir: &Path, world: Option<&str>) -> anyhow::Result<Self> {
        let mut resolve = Resolve::new();
        let (package, _) = resolve
            .push_dir(dir)
            .with_context(|| format!("cannot load the WIT package in {}", dir.display()))?;
        let id = resolve.select_world(&[package], world)?;
        let names = |items: &indexmap::IndexMap<WorldKey, WorldItem>| {
            items
                .iter()
                .filter_map(|(key, item)| match (key, item) {
                    (WorldKey::Interface(id), WorldItem::Interface { .. }) => resolve.id_of(*id),
                    _ => None,
                })
                .map(|name| InterfaceName::parse(&name))
                .collect::<Vec<_>>()
        };
        let w = &resolve.worlds[id];
        let package = &resolve.packages[w.package.expect("worlds from a directory have a package")];
        Ok(Self {
            name: format!("{}/{}", package.name, w.name),
            imports: names(&w.imports),
            exports: names(&w.exports),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks a component's import and export names against the world.
    pub fn check<'a>(
        &self,
        component: &str,
        imports: impl IntoIterator<Item = &'a str>,
        exports: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<()> {
        let missing: Vec<&str> = imports
            .into_iter()
            .filter(|import| {
                let wanted = InterfaceName::parse(import);
                !self.imports.iter().any(|have| have.satisfies(&wanted))
            })
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "component `{component}` imports `{}`, which the world `{}` does not provide; \
                 edge components may only import that world's wasi:* interfaces (configuration \
                 through wasi:config/store, state through outbound HTTP)",
                missing.join("`, `"),
                self.name
            );
        }
        let exports: Vec<_> = exports.into_iter().map(InterfaceName::parse).collect();
        for required in &self.exports {
            if !exports.iter().any(|e| required.satisfies(e)) {
                anyhow::bail!(
                    "component `{component}` does not export `{}` as the world `{}` requires",
                    required.path,
                    self.name
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> EdgeWorld {
        EdgeWorld::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit"), None).unwrap()
    }

    const HANDLER: &str = "wasi:http/incoming-handler@0.2.4";

    #[test]
    fn the_project_world_accepts_wasi_imports_of_older_patch_versions() {
        let w = world();
        assert_eq!(w.name(), "stampede:edge@0.1.0/edge-component");
        w.check("c", ["wasi:http/types@0.2.0", "wasi:cli/environment@0.2.3"], [HANDLER]).unwrap();
    }

    #[test]
    fn foreign_and_newer_imports_are_named_in_the_error() {
        let w = world();
        let err = w.check("edge-queue", ["spin:variables/variables@3.0.0"], [HANDLER]);
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("edge-queue") && msg.contains("spin:variables/variables@3.0.0"));
        assert!(w.check("c", ["wasi:http/types@0.3.0"], [HANDLER]).is_err());
        assert!(w.check("c", ["wasi:filesystem/types@0.2.0"], [HANDLER]).is_err());
    }

    #[test]
    fn configuration_is_the_snapshot_spin_ships_and_no_other() {
        let w = world();
        w.check("c", ["wasi:config/store@0.2.0-draft-2024-09-27"], [HANDLER]).unwrap();
        for other in
            ["wasi:config/store@0.2.0-rc.1", "wasi:config/store@0.2.0-draft", "wasi:config/store@0.2.0"]
        {
            assert!(w.check("c", [other], [HANDLER]).is_err(), "{other}");
        }
    }

    #[test]
    fn the_incoming_handler_export_is_required() {
        let err = world().check("c", [], ["wasi:cli/run@0.2.0"]).unwrap_err();
        assert!(err.to_string().contains("wasi:http/incoming-handler"));
    }
}
