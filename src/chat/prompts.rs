//! Prompt templates from `prompts/` (minijinja), each with a name and a version that are
//! recorded with every answer. Every template is rendered once at start-up with sample
//! values, so a broken template stops the server before it takes traffic.

use crate::lang::Lang;
use anyhow::{bail, Context};
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The templates Teller needs, per language.
pub const TEMPLATE_NAMES: [&str; 7] = [
    "system",
    "answer",
    "condense",
    "refusal",
    "handoff",
    "fallback",
    "disclosure",
];

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    version: u32,
}

/// `name@version`, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRef {
    pub name: String,
    pub version: u32,
}

/// A passage as the answer template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PromptPassage {
    pub source_id: String,
    pub title: String,
    pub text: String,
}

/// Loaded, validated templates.
pub struct Prompts {
    env: Environment<'static>,
    versions: BTreeMap<String, u32>,
    bank_name: String,
}

impl Prompts {
    pub fn load(dir: &Path, bank_name: &str) -> anyhow::Result<Self> {
        let manifest_path = dir.join("prompts.toml");
        let manifest = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read {}", manifest_path.display()))?;
        let manifest: BTreeMap<String, ManifestEntry> = toml::from_str(&manifest)
            .with_context(|| format!("invalid {}", manifest_path.display()))?;
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // Passages and questions are plain text, not HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        let mut versions = BTreeMap::new();
        for name in TEMPLATE_NAMES {
            let Some(entry) = manifest.get(name) else {
                bail!(
                    "{} has no entry for template {name:?}",
                    manifest_path.display()
                );
            };
            versions.insert(name.to_string(), entry.version);
            for lang in [Lang::En, Lang::ZhCn] {
                let path = dir.join(lang.as_str()).join(format!("{name}.j2"));
                let source = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read template {}", path.display()))?;
                env.add_template_owned(key(name, lang), source)
                    .with_context(|| format!("template {} does not compile", path.display()))?;
            }
        }
        let prompts = Self {
            env,
            versions,
            bank_name: bank_name.to_string(),
        };
        prompts.check()?;
        Ok(prompts)
    }

    /// Renders every template with sample values, so errors surface at start-up.
    fn check(&self) -> anyhow::Result<()> {
        let passages = vec![PromptPassage {
            source_id: "s".into(),
            title: "t".into(),
            text: "x".into(),
        }];
        for lang in [Lang::En, Lang::ZhCn] {
            self.answer(lang, &passages, "q")?;
            self.condense(lang, &[("user".into(), "a".into())], "b")?;
            for name in ["system", "refusal", "handoff", "fallback", "disclosure"] {
                self.text(name, lang)?;
            }
        }
        Ok(())
    }

    fn render(&self, name: &str, lang: Lang, ctx: minijinja::Value) -> anyhow::Result<String> {
        let template = self.env.get_template(&key(name, lang))?;
        Ok(template
            .render(ctx)
            .with_context(|| format!("template {name} ({lang}) failed to render"))?
            .trim()
            .to_string())
    }

    /// A template that needs only the bank name (system, refusal, handoff, ...).
    pub fn text(&self, name: &str, lang: Lang) -> anyhow::Result<String> {
        self.render(
            name,
            lang,
            minijinja::context! { bank_name => self.bank_name },
        )
    }

    pub fn answer(
        &self,
        lang: Lang,
        passages: &[PromptPassage],
        question: &str,
    ) -> anyhow::Result<String> {
        self.render(
            "answer",
            lang,
            minijinja::context! { bank_name => self.bank_name, passages, question },
        )
    }

    pub fn condense(
        &self,
        lang: Lang,
        history: &[(String, String)],
        message: &str,
    ) -> anyhow::Result<String> {
        let history: Vec<_> = history
            .iter()
            .map(|(role, content)| minijinja::context! { role, content })
            .collect();
        self.render(
            "condense",
            lang,
            minijinja::context! { bank_name => self.bank_name, history, message },
        )
    }

    pub fn reference(&self, name: &str) -> TemplateRef {
        TemplateRef {
            name: name.to_string(),
            version: self.versions.get(name).copied().unwrap_or_default(),
        }
    }
}

fn key(name: &str, lang: Lang) -> String {
    format!("{}/{name}", lang.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_prompts() -> Prompts {
        Prompts::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
            "Lantern Bank",
        )
        .unwrap()
    }

    #[test]
    fn shipped_templates_load_and_render() {
        let prompts = repo_prompts();
        let passages = vec![
            PromptPassage {
                source_id: "faq-1".into(),
                title: "Fees".into(),
                text: "Fee is <b>LTD 5</b>.".into(),
            },
            PromptPassage {
                source_id: "doc-2".into(),
                title: "Limits".into(),
                text: "Limit is LTD 10.".into(),
            },
        ];
        let answer = prompts.answer(Lang::En, &passages, "what fee?").unwrap();
        assert!(
            answer.contains(
                "<passage n=\"1\" source=\"faq-1\" title=\"Fees\">\nFee is <b>LTD 5</b>."
            ),
            "{answer}"
        );
        assert!(answer.contains("<passage n=\"2\""));
        assert!(answer.ends_with("Customer question: what fee?"));
        assert!(prompts
            .text("system", Lang::ZhCn)
            .unwrap()
            .contains("Lantern Bank"));
        assert_eq!(
            prompts.reference("answer"),
            TemplateRef {
                name: "answer".into(),
                version: 1
            }
        );
    }

    #[test]
    fn a_broken_template_fails_loading() {
        let dir = tempfile::TempDir::new().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        for sub in ["", "en", "zh-CN"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::copy(src.join("prompts.toml"), dir.path().join("prompts.toml")).unwrap();
        for lang in ["en", "zh-CN"] {
            for name in TEMPLATE_NAMES {
                std::fs::copy(
                    src.join(lang).join(format!("{name}.j2")),
                    dir.path().join(lang).join(format!("{name}.j2")),
                )
                .unwrap();
            }
        }
        std::fs::write(
            dir.path().join("zh-CN/answer.j2"),
            "{{ passages | nosuchfilter }}",
        )
        .unwrap();
        let err = Prompts::load(dir.path(), "Bank")
            .err()
            .expect("broken template rejected");
        assert!(format!("{err:#}").contains("answer"), "{err:#}");
    }
}
