use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use super::{GateContext, GateOutcome, PromotionGate};
use crate::error::{Error, Result};

/// A command to run as a gate: an argument vector, never a shell line.
///
/// `${ARTIFACT_REF}` and `${ARTIFACT_DIGEST}` inside an argument are replaced by the artifact's
/// reference (`<repository>@<digest>`) and digest; each argument stays one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// This command's timeout (the environment's gate timeout when `None`).
    pub timeout: Option<Duration>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: Option<PathBuf>,
}

impl CommandSpec {
    /// A command from its argument vector; refuses an empty one.
    pub fn new<I, S>(argv: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(Error::invalid(
                "command",
                format!("{argv:?}"),
                "a command needs a program as its first argument",
            ));
        }
        Ok(CommandSpec {
            argv,
            timeout: None,
            env: BTreeMap::new(),
            working_dir: None,
        })
    }
}

/// Runs a command; exit status 0 passes, anything else fails.
#[derive(Debug, Clone)]
pub struct CommandGate {
    name: String,
    spec: CommandSpec,
}

impl CommandGate {
    /// A gate named `name` running `spec`.
    pub fn new(name: impl Into<String>, spec: CommandSpec) -> Self {
        CommandGate {
            name: name.into(),
            spec,
        }
    }
}

#[async_trait]
impl PromotionGate for CommandGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn evaluate(&self, _ctx: &GateContext) -> Result<GateOutcome> {
        Err(Error::not_supported("command gate", "being implemented"))
    }

    fn timeout(&self) -> Option<Duration> {
        self.spec.timeout
    }
}
