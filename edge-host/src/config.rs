//! `wasi:config/store` as Spin 3 provides it: a component reads its
//! `[component.<id>.variables]` from `spin.toml`, templates expanded with
//! the application's variables and `SPIN_VARIABLE_*` overrides, and nothing
//! else. Unknown and invalid names read as absent, as on Spin.
//!
//! Wasmtime's `wasmtime-wasi-config` implements another version of the
//! proposal (`0.2.0-rc.1`), so this binds the snapshot in `wit/deps/config`.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit/deps/config", world: "wasi:config/imports" });
}

use bindings::wasi::config::store;

/// One component's variables, shared by all its instances.
#[derive(Clone, Default)]
pub struct ComponentVariables(Arc<BTreeMap<String, String>>);

impl ComponentVariables {
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(Arc::new(values.into_iter().collect()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Values are secrets (signing keys, tokens): only names are shown.
impl std::fmt::Debug for ComponentVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl store::Host for ComponentVariables {
    fn get(&mut self, key: String) -> Result<Option<String>, store::Error> {
        Ok(ComponentVariables::get(self, &key).map(str::to_owned))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, store::Error> {
        Ok(self.0.iter().map(|(name, value)| (name.clone(), value.clone())).collect())
    }
}

/// Offers `wasi:config/store` to components, each reading the variables
/// `variables` finds in its store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    variables: fn(&mut T) -> &mut ComponentVariables,
) -> anyhow::Result<()> {
    store::add_to_linker::<T, HasSelf<ComponentVariables>>(linker, variables)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_reads_its_own_variables_and_nothing_else() {
        let mut variables =
            ComponentVariables::new([("origin_url".to_owned(), "http://origin:8080".to_owned())]);
        let mut read = |name: &str| store::Host::get(&mut variables, name.to_owned()).unwrap();
        assert_eq!(read("origin_url").as_deref(), Some("http://origin:8080"));
        assert_eq!(read("ORIGIN_URL"), None);
        assert_eq!(read("missing"), None);
        assert_eq!(
            store::Host::get_all(&mut variables).unwrap(),
            [("origin_url".into(), "http://origin:8080".into())]
        );
        assert_eq!(format!("{variables:?}"), r#"{"origin_url"}"#);
    }
}
