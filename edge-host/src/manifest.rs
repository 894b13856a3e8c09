//! The Spin application manifest (`spin.toml`, manifest version 2) as the
//! edge host understands it: HTTP triggers, component sources, application
//! variables with `{{ name }}` templates, and `allowed_outbound_hosts`.
//!
//! `spin.toml` is the one source of truth for routes, so `spin up` and a local
//! `edge-host` serve the same application. As on Spin, a component's
//! `variables` reach it through `wasi:config/store` (see [`crate::config`])
//! and only its static `environment` table becomes environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::ComponentVariables;
use crate::outbound::{AllowedHost, OutboundPolicy};
use crate::routes::{RoutePattern, Router};

/// Why a manifest could not be turned into a runnable application.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid Spin manifest: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("spin_manifest_version {0} is not supported; use spin_manifest_version = 2")]
    Version(u32),
    #[error(
        "trigger route `{route}` names component `{component}`, which is not defined under [component.{component}]"
    )]
    UnknownComponent { route: String, component: String },
    #[error("invalid route `{route}`: {reason}")]
    Route { route: String, reason: String },
    #[error(
        "template `{template}` refers to application variable `{name}`, which is not declared under [variables]"
    )]
    UndeclaredVariable { template: String, name: String },
    #[error("application variable `{name}` is required: set SPIN_VARIABLE_{}", name.to_uppercase())]
    MissingVariable { name: String },
    #[error("invalid variable name `{name}`: {reason}")]
    VariableName { name: String, reason: &'static str },
    #[error("unterminated `{{{{` in template `{0}`")]
    Template(String),
    #[error("component `{component}`: invalid allowed_outbound_hosts entry `{entry}`: {reason}")]
    OutboundHost { component: String, entry: String, reason: String },
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: String,
    component: String,
}

#[derive(Deserialize)]
struct RawComponent {
    source: String,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

/// One component ready to be compiled: where its code is and what it may see.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    pub id: String,
    pub source: PathBuf,
    /// Environment variables: the `environment` table, nothing more.
    pub environment: Vec<(String, String)>,
    /// The component's `variables`, templates expanded.
    pub variables: ComponentVariables,
    pub outbound: OutboundPolicy,
}

/// A resolved application: its components and the router in front of them.
#[derive(Debug)]
pub struct Application {
    pub components: Vec<ComponentSpec>,
    pub router: Router,
}

impl Application {
    /// Reads `spin.toml`, resolving variables from `SPIN_VARIABLE_<NAME>` in
    /// this process's environment (as `spin up` does).
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, base, |name| {
            std::env::var(format!("SPIN_VARIABLE_{}", name.to_uppercase())).ok()
        })
    }

    /// Parses manifest text; `provided` answers an application variable's
    /// value from outside the manifest, relative `source` paths start at `base`.
    pub fn parse(
        text: &str,
        path: &Path,
        base: &Path,
        provided: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ManifestError> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|source| ManifestError::Parse { path: path.to_owned(), source })?;
        if raw.spin_manifest_version != 2 {
            return Err(ManifestError::Version(raw.spin_manifest_version));
        }
        let variables = Variables::resolve(&raw.variables, provided)?;

        let mut ids = Vec::new();
        let mut components = Vec::new();
        for (id, component) in &raw.component {
            ids.push(id.clone());
            components.push(resolve_component(id, component, base, &variables)?);
        }

        let mut routes = Vec::new();
        for trigger in &raw.trigger.http {
            let index = ids.iter().position(|id| *id == trigger.component).ok_or_else(|| {
                ManifestError::UnknownComponent {
                    route: trigger.route.clone(),
                    component: trigger.component.clone(),
                }
            })?;
            let pattern = RoutePattern::parse(&trigger.route)
                .map_err(|reason| ManifestError::Route { route: trigger.route.clone(), reason })?;
            routes.push((pattern, index));
        }
        Ok(Self { components, router: Router::new(routes) })
    }
}

fn resolve_component(
    id: &str,
    raw: &RawComponent,
    base: &Path,
    variables: &Variables,
) -> Result<ComponentSpec, ManifestError> {
    let environment = raw.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut values = Vec::new();
    for (name, template) in &raw.variables {
        check_variable_name(name)?;
        values.push((name.clone(), variables.expand(template)?));
    }
    let mut allowed = Vec::new();
    for entry in &raw.allowed_outbound_hosts {
        let expanded = variables.expand(entry)?;
        let host = AllowedHost::parse(&expanded).map_err(|reason| ManifestError::OutboundHost {
            component: id.to_owned(),
            entry: entry.clone(),
            reason,
        })?;
        allowed.push(host);
    }
    Ok(ComponentSpec {
        id: id.to_owned(),
        source: base.join(&raw.source),
        environment,
        variables: ComponentVariables::new(values),
        outbound: OutboundPolicy::new(allowed),
    })
}

/// Spin's rule for variable names, which keeps each one a valid
/// `SPIN_VARIABLE_*` name: lower-case letters, digits and single
/// underscores, starting with a letter and ending with a letter or digit.
fn check_variable_name(name: &str) -> Result<(), ManifestError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Some("use lower-case letters, digits and underscores")
    } else if !name.as_bytes()[0].is_ascii_lowercase() {
        Some("start with a lower-case letter")
    } else if !name.as_bytes()[name.len() - 1].is_ascii_alphanumeric() {
        Some("end with a letter or digit")
    } else if name.contains("__") {
        Some("no two underscores in a row")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ManifestError::VariableName { name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Application variables with their final values.
struct Variables(BTreeMap<String, Option<String>>);

impl Variables {
    fn resolve(
        declared: &BTreeMap<String, RawVariable>,
        provided: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ManifestError> {
        let mut values = BTreeMap::new();
        for (name, variable) in declared {
            check_variable_name(name)?;
            let value = provided(name).or_else(|| variable.default.clone());
            if value.is_none() && variable.required {
                return Err(ManifestError::MissingVariable { name: name.clone() });
            }
            values.insert(name.clone(), value);
        }
        Ok(Self(values))
    }

    /// Replaces each `{{ name }}` in `template` with the variable's value.
    fn expand(&self, template: &str) -> Result<String, ManifestError> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| ManifestError::Template(template.into()))?;
            let name = after[..end].trim();
            let value = match self.0.get(name) {
                None => {
                    return Err(ManifestError::UndeclaredVariable {
                        template: template.into(),
                        name: name.into(),
                    });
                }
                Some(None) => return Err(ManifestError::MissingVariable { name: name.into() }),
                Some(Some(value)) => value,
            };
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "demo"

[variables]
origin_url = { default = "http://127.0.0.1:8080" }
api_token = { required = true, secret = true }

[[trigger.http]]
route = "/api/..."
component = "api"

[component.api]
source = "target/api.wasm"
allowed_outbound_hosts = ["{{ origin_url }}"]
environment = { MODE = "demo" }
[component.api.variables]
origin_url = "{{ origin_url }}"
token = "Bearer {{api_token}}"
"#;

    fn parse(provided: &[(&str, &str)]) -> Result<Application, ManifestError> {
        Application::parse(MANIFEST, Path::new("spin.toml"), Path::new("/app"), |name| {
            provided.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        })
    }

    fn variable<'a>(component: &'a ComponentSpec, name: &str) -> Option<&'a str> {
        component.variables.get(name)
    }

    #[test]
    fn variables_expand_templates_and_stay_out_of_the_environment() {
        let app = parse(&[("api_token", "s3cret")]).unwrap();
        let api = &app.components[0];
        assert_eq!(api.source, Path::new("/app/target/api.wasm"));
        assert_eq!(api.environment, [("MODE".to_owned(), "demo".to_owned())]);
        assert_eq!(variable(api, "origin_url"), Some("http://127.0.0.1:8080"));
        assert_eq!(variable(api, "token"), Some("Bearer s3cret"));
        assert_eq!(variable(api, "api_token"), None, "application variables are not the component's");
    }

    #[test]
    fn variable_names_follow_spins_rules() {
        for bad in ["Origin", "origin-url", "1origin", "origin_", "origin__url", "_origin"] {
            let text = MANIFEST.replace("token = \"Bearer", &format!("{bad} = \"Bearer"));
            let err =
                Application::parse(&text, Path::new("m"), Path::new("."), |_| Some("http://h:1".into()));
            assert!(
                matches!(&err, Err(ManifestError::VariableName { name, .. }) if name == bad),
                "{bad}: {err:?}"
            );
        }
        let text = MANIFEST.replace("api_token = {", "Api_token = {");
        let err = Application::parse(&text, Path::new("m"), Path::new("."), |_| Some("http://h:1".into()));
        assert!(matches!(err, Err(ManifestError::VariableName { .. })), "{err:?}");
    }

    #[test]
    fn provided_values_override_defaults_everywhere() {
        let app = parse(&[("api_token", "t"), ("origin_url", "http://10.0.0.7:9000")]).unwrap();
        let api = &app.components[0];
        assert_eq!(variable(api, "origin_url"), Some("http://10.0.0.7:9000"));
        assert!(api.outbound.allows(&"http://10.0.0.7:9000/x".parse().unwrap()));
        assert!(!api.outbound.allows(&"http://127.0.0.1:8080/x".parse().unwrap()));
    }

    #[test]
    fn a_required_variable_without_value_is_named() {
        let err = parse(&[]).unwrap_err().to_string();
        assert!(err.contains("api_token") && err.contains("SPIN_VARIABLE_API_TOKEN"), "{err}");
    }

    #[test]
    fn unknown_component_and_undeclared_variable_are_reported() {
        let text = MANIFEST.replace("component = \"api\"", "component = \"nope\"");
        let err = Application::parse(&text, Path::new("m"), Path::new("."), |_| Some("http://h:1".into()));
        assert!(matches!(err, Err(ManifestError::UnknownComponent { .. })), "{err:?}");

        let text = MANIFEST.replace("Bearer {{api_token}}", "{{ missing }}");
        let err = Application::parse(&text, Path::new("m"), Path::new("."), |_| Some("http://h:1".into()));
        assert!(matches!(err, Err(ManifestError::UndeclaredVariable { name, .. }) if name == "missing"));
    }

    #[test]
    fn other_manifest_versions_are_refused() {
        let text = MANIFEST.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        let err = Application::parse(&text, Path::new("m"), Path::new("."), |_| Some("http://h:1".into()));
        assert!(matches!(err, Err(ManifestError::Version(1))));
    }
}
