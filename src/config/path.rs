//! Which `autostop.toml` to read. In order: the file named by `--config`, then
//! `$AUTOSTOP_CONFIG`, then `autostop.toml` in the current directory, then beside the binary.
//!
//! A file named on purpose (the flag or the variable) is the only candidate: when it cannot be
//! read that is the error, never a quiet fall back to another file. The current directory comes
//! before the binary's: an operator runs the CLI from the repository that holds the config, and
//! `target/debug/` holds none. In Lambda the template sets `AUTOSTOP_CONFIG`; without it, the
//! current directory and the binary's are both `/var/task`.

use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "autostop.toml";

/// Where to look: each candidate with the reason it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub flag: Option<PathBuf>,
    pub env: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub exe_dir: Option<PathBuf>,
}

/// The file chosen, and why it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub why: &'static str,
}

impl Search {
    /// This process's candidates, with `flag` from the command line.
    pub fn of_process(flag: Option<PathBuf>) -> Search {
        Search {
            flag,
            env: std::env::var_os("AUTOSTOP_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from),
            cwd: std::env::current_dir().ok(),
            exe_dir: std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)),
        }
    }

    /// The first candidate in order; `exists` tells whether a searched-for file is there.
    pub fn find(&self, exists: impl Fn(&Path) -> bool) -> Result<Found, String> {
        if let Some(path) = &self.flag {
            return Ok(Found { path: path.clone(), why: "--config" });
        }
        if let Some(path) = &self.env {
            return Ok(Found { path: path.clone(), why: "$AUTOSTOP_CONFIG" });
        }
        let looked: Vec<(PathBuf, &'static str)> = [
            self.cwd.as_ref().map(|d| (d.join(FILE_NAME), "the current directory")),
            self.exe_dir.as_ref().map(|d| (d.join(FILE_NAME), "beside the binary")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some((path, why)) = looked.iter().find(|(p, _)| exists(p)) {
            return Ok(Found { path: path.clone(), why });
        }
        let places: Vec<String> = looked.iter().map(|(p, _)| p.display().to_string()).collect();
        Err(format!(
            "no config: looked for {} (none there); write one (README, Configuration), or name it with --config or \
             AUTOSTOP_CONFIG",
            places.join(" and ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> Search {
        Search {
            flag: None,
            env: None,
            cwd: Some(PathBuf::from("/repo")),
            exe_dir: Some(PathBuf::from("/repo/target/debug")),
        }
    }

    #[test]
    fn the_flag_then_the_variable_then_the_current_directory_then_beside_the_binary() {
        let all = |_: &Path| true;
        let s = Search { flag: Some("/a.toml".into()), env: Some("/b.toml".into()), ..search() };
        assert_eq!(s.find(all).unwrap(), Found { path: "/a.toml".into(), why: "--config" });
        let s = Search { env: Some("/b.toml".into()), ..search() };
        assert_eq!(s.find(all).unwrap(), Found { path: "/b.toml".into(), why: "$AUTOSTOP_CONFIG" });
        assert_eq!(search().find(all).unwrap().path, PathBuf::from("/repo/autostop.toml"));
        let beside = search().find(|p: &Path| p.starts_with("/repo/target")).unwrap();
        assert_eq!(beside, Found { path: "/repo/target/debug/autostop.toml".into(), why: "beside the binary" });
    }

    #[test]
    fn a_file_named_on_purpose_is_never_swapped_for_another_and_none_found_names_where_it_looked() {
        let s = Search { flag: Some("/missing.toml".into()), ..search() };
        assert_eq!(s.find(|_: &Path| false).unwrap().path, PathBuf::from("/missing.toml"));
        let e = search().find(|_: &Path| false).unwrap_err();
        assert!(e.contains("/repo/autostop.toml and /repo/target/debug/autostop.toml"), "{e}");
        assert!(e.contains("--config"), "{e}");
    }
}
