//! The language manifest (`sandbox-images/languages.json`): for each language
//! its id, display name, version, source file name, compile and run commands
//! and image tag. Embedded in the binary; `LANGUAGES_MANIFEST` points the
//! worker at another file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const EMBEDDED: &str = include_str!("../../../sandbox-images/languages.json");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Language {
    pub id: String,
    pub name: String,
    pub version: String,
    pub image: String,
    /// The name a single `source` is saved under (e.g. `Main.java`).
    pub source_file: String,
    pub compile: Option<Vec<String>>,
    pub run: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub languages: Vec<Language>,
}

impl Manifest {
    pub fn embedded() -> Self {
        Self::parse(EMBEDDED).expect("the embedded manifest is valid (checked by a test)")
    }

    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn load(path: Option<&str>) -> anyhow::Result<Self> {
        match path {
            None => Ok(Self::embedded()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read LANGUAGES_MANIFEST {path}: {e}"))?;
                Self::parse(&text)
                    .map_err(|e| anyhow::anyhow!("LANGUAGES_MANIFEST {path} is invalid: {e}"))
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Language> {
        self.languages.iter().find(|l| l.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_has_the_six_required_languages() {
        let manifest = Manifest::embedded();
        for id in ["python", "javascript", "c", "cpp", "java", "go"] {
            let language = manifest.get(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(!language.run.is_empty());
            assert!(sandbox_runner::valid_file_name(&language.source_file));
        }
    }
}
