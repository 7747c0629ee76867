//! What the user asked for (`--db`, `--pg-bin`, …) and how `auto` decides.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// `--db auto|local|docker|<postgres:// URL>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Auto,
    Local,
    Docker,
    Url(String),
}

impl FromStr for Choice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(Choice::Auto),
            "local" => Ok(Choice::Local),
            "docker" => Ok(Choice::Docker),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                url.parse::<tokio_postgres::Config>()
                    .map_err(|_| Error::BadChoice {
                        value: s.to_string(),
                    })?;
                Ok(Choice::Url(url.to_string()))
            }
            _ => Err(Error::BadChoice {
                value: s.to_string(),
            }),
        }
    }
}

/// fsync/synchronous_commit on (durable) or off (fast). Load runs measure durable servers by
/// default, because that is what production runs; tests use fast because they test behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    Fast,
}

impl Durability {
    pub fn is_durable(self) -> bool {
        self == Durability::Durable
    }

    /// The server settings (`postgres` arguments) that make it so; one list for every
    /// provider, so local and Docker servers are configured alike.
    pub(crate) fn server_args(self) -> &'static [&'static str] {
        match self {
            Durability::Durable => &["-c", "fsync=on", "-c", "synchronous_commit=on"],
            Durability::Fast => &[
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
        }
    }
}

/// Everything the provider needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    pub choice: Choice,
    /// Directory holding `initdb` and `postgres` (`--pg-bin`).
    pub pg_bin: Option<PathBuf>,
    /// Docker image (`--pg-image`).
    pub image: String,
    /// How long the Docker provider may spend pulling an absent image.
    pub pull_timeout: Duration,
    pub durability: Durability,
    /// How long to wait for the server to accept connections.
    pub ready_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            choice: Choice::Auto,
            pg_bin: None,
            image: crate::docker::DEFAULT_IMAGE.into(),
            pull_timeout: Duration::from_secs(300),
            durability: Durability::Fast,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

impl Options {
    /// The image Docker tests and benchmarks use: `E2EE_HARNESS_PG_IMAGE`, or the one
    /// `docker/postgres/build-image.sh 15` builds (engines here cannot pull).
    pub fn image_for_tests() -> String {
        std::env::var("E2EE_HARNESS_PG_IMAGE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "e2ee-harness/postgres:15".into())
    }

    /// Options for tests: `DATABASE_URL` if set, else auto; fast mode.
    pub fn for_tests() -> Options {
        let choice = std::env::var("DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .unwrap_or(Choice::Auto);
        Options {
            choice,
            ..Options::default()
        }
    }
}

/// Turns `auto` into a concrete choice, with the one-line reason shown to the user.
pub(crate) async fn resolve(options: &Options) -> Result<(Choice, String), Error> {
    if options.choice != Choice::Auto {
        return decide(options, None, Err(String::new()), || unreachable!());
    }
    let env_url = std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty());
    let docker = if env_url.is_some() {
        Err("not asked".to_string())
    } else {
        crate::docker::usable(options).await
    };
    decide(options, env_url, docker, || {
        crate::local::find_binaries(options.pg_bin.as_deref()).map(|b| b.dir)
    })
}

/// The decision itself, with the environment passed in so tests can vary it:
/// an explicit choice wins; in `auto`, a URL wins, then a Docker engine that answered and has
/// (or can pull) the image, then local binaries; with none of them, an error naming all three
/// ways. `docker` is `Err(why Docker was passed over)`.
pub(crate) fn decide(
    options: &Options,
    env_url: Option<String>,
    docker: Result<(), String>,
    local: impl FnOnce() -> Result<PathBuf, Error>,
) -> Result<(Choice, String), Error> {
    match &options.choice {
        Choice::Url(u) => Ok((
            Choice::Url(u.clone()),
            format!("using the given URL ({})", crate::display_target(u)),
        )),
        Choice::Local => Ok((Choice::Local, "local binaries (--db local)".into())),
        Choice::Docker => Ok((
            Choice::Docker,
            format!("Docker (--db docker), image {}", options.image),
        )),
        Choice::Auto => {
            if let Some(url) = env_url {
                let c: Choice = url.parse()?;
                return Ok((
                    c,
                    format!(
                        "auto: DATABASE_URL is set ({})",
                        crate::display_target(&url)
                    ),
                ));
            }
            match docker {
                Ok(()) => Ok((
                    Choice::Docker,
                    format!(
                        "auto: a Docker engine answered and has image {}",
                        options.image
                    ),
                )),
                Err(why) => match local() {
                    Ok(dir) => Ok((
                        Choice::Local,
                        format!(
                            "auto: Docker passed over ({why}); local binaries in {}",
                            dir.display()
                        ),
                    )),
                    Err(e) => Err(Error::NoProvider {
                        detail: format!("Docker passed over ({why}); {e}"),
                    }),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_accepted_form() {
        assert_eq!("auto".parse::<Choice>().unwrap(), Choice::Auto);
        assert_eq!("local".parse::<Choice>().unwrap(), Choice::Local);
        assert_eq!("docker".parse::<Choice>().unwrap(), Choice::Docker);
        assert_eq!(
            "postgres://u@127.0.0.1:5/db".parse::<Choice>().unwrap(),
            Choice::Url("postgres://u@127.0.0.1:5/db".into())
        );
        assert!(matches!(
            "postgresql://h/db".parse::<Choice>().unwrap(),
            Choice::Url(_)
        ));
    }

    #[test]
    fn rejects_nonsense_naming_the_accepted_forms() {
        let err = "nonsense".parse::<Choice>().unwrap_err();
        let msg = err.to_string();
        for form in ["auto", "local", "docker", "postgres://"] {
            assert!(msg.contains(form), "{msg}");
        }
        assert_eq!(err.exit_code(), 2);
    }

    fn auto() -> Options {
        Options::default()
    }

    #[test]
    fn explicit_url_wins_over_everything() {
        let opts = Options {
            choice: Choice::Url("postgres://x@127.0.0.1:1/y".into()),
            ..Options::default()
        };
        let (c, reason) = decide(&opts, None, Ok(()), || {
            panic!("local must not be consulted")
        })
        .unwrap();
        assert_eq!(c, Choice::Url("postgres://x@127.0.0.1:1/y".into()));
        assert!(reason.contains("127.0.0.1:1"));
    }

    #[test]
    fn auto_prefers_a_url_from_the_environment_over_docker() {
        let (c, reason) = decide(
            &auto(),
            Some("postgres://e@127.0.0.1:7/z".into()),
            Ok(()),
            || panic!("no"),
        )
        .unwrap();
        assert_eq!(c, Choice::Url("postgres://e@127.0.0.1:7/z".into()));
        assert!(reason.contains("DATABASE_URL"), "{reason}");
    }

    #[test]
    fn auto_uses_docker_when_it_answers() {
        let (c, _) = decide(&auto(), None, Ok(()), || panic!("no")).unwrap();
        assert_eq!(c, Choice::Docker);
    }

    #[test]
    fn auto_without_docker_falls_back_to_local_and_says_why() {
        let (c, reason) = decide(&auto(), None, Err("no socket".into()), || {
            Ok(PathBuf::from("/opt/pg/bin"))
        })
        .unwrap();
        assert_eq!(c, Choice::Local);
        assert!(
            reason.contains("no socket") && reason.contains("/opt/pg/bin"),
            "{reason}"
        );
    }

    #[test]
    fn auto_with_nothing_names_all_three_ways() {
        let err = decide(&auto(), None, Err("no socket".into()), || {
            Err(Error::NoBinaries {
                detail: "none".into(),
            })
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--db postgres://")
                && msg.contains("--db docker")
                && msg.contains("--db local"),
            "{msg}"
        );
        assert_eq!(err.exit_code(), 3);
    }
}
