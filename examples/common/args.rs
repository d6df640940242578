//! The examples' command-line flags, parsed simply: a switch (`--json`) or a name
//! followed by its value (`--n 4000000`). Anything else on the line is ignored, so a
//! bench run by `cargo bench` (which adds `--bench`) can use it too.

// each example uses the part it needs
#![allow(dead_code)]

use std::str::FromStr;

/// The program's arguments.
pub struct Args(Vec<String>);

impl Args {
    /// This program's arguments, without its name.
    pub fn from_env() -> Args {
        Args(std::env::args().skip(1).collect())
    }

    /// Whether the switch `name` is given.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    /// The value after `name`, if `name` is given; an error if nothing follows it.
    pub fn value(&self, name: &str) -> anyhow::Result<Option<&str>> {
        match self.0.iter().position(|a| a == name) {
            Some(i) => match self.0.get(i + 1) {
                Some(v) => Ok(Some(v)),
                None => anyhow::bail!("{name} needs a value"),
            },
            None => Ok(None),
        }
    }

    /// The value after `name`, parsed, or `default` when `name` is not given.
    pub fn get<T>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.value(name)? {
            Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name} {v}: {e}")),
            None => Ok(default),
        }
    }

    /// `--n`: how many elements, `default` when not given.
    pub fn n(&self, default: usize) -> anyhow::Result<usize> {
        self.get("--n", default)
    }

    /// `--json`: print JSON for machines instead of a table.
    pub fn json(&self) -> bool {
        self.has("--json")
    }
}
