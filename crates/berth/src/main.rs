//! `berth`: a docker-compatible command line client for berthd.
#![recursion_limit = "512"]

mod auth;
mod buildout;
mod cmds;
mod container;
mod context;
mod daemon;
mod format;
mod gen;
mod humanize;
mod image;
mod jsonfmt;
mod network;
mod opts;
mod pipe;
mod progress;
mod run;
mod system;
mod template;
mod tty;
mod volume;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Exit with a specific status after printing (already printed) output.
#[derive(Debug)]
pub struct ExitStatus(pub i32);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}
impl std::error::Error for ExitStatus {}

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers (docker-compatible CLI for berthd)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path); defaults to $DOCKER_HOST, the current context, or unix:///run/berth/berth.sock
    #[arg(
        short = 'H',
        long = "host",
        global = true,
        id = "global_host",
        value_name = "HOST"
    )]
    pub host: Option<String>,
    /// Name of the context to use (overrides DOCKER_HOST and `berth context use`)
    #[arg(
        long = "context",
        global = true,
        id = "global_context",
        value_name = "CONTEXT"
    )]
    pub context: Option<String>,
    /// Location of client config files (default ~/.docker, or $DOCKER_CONFIG)
    #[arg(
        long = "config",
        global = true,
        id = "global_config",
        value_name = "DIR"
    )]
    pub config: Option<String>,
    /// Use TLS for a tcp:// daemon; implied by --tlsverify
    #[arg(long = "tls", global = true)]
    pub tls: bool,
    /// Use TLS and verify the daemon's certificate (also DOCKER_TLS_VERIFY)
    #[arg(long = "tlsverify", global = true)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA (default DOCKER_CERT_PATH/ca.pem or ~/.docker/ca.pem)
    #[arg(long = "tlscacert", global = true, value_name = "FILE")]
    pub tlscacert: Option<String>,
    /// Path to TLS certificate file (default DOCKER_CERT_PATH/cert.pem)
    #[arg(long = "tlscert", global = true, value_name = "FILE")]
    pub tlscert: Option<String>,
    /// Path to TLS key file (default DOCKER_CERT_PATH/key.pem)
    #[arg(long = "tlskey", global = true, value_name = "FILE")]
    pub tlskey: Option<String>,
    /// Start berthd (from next to this binary) when no daemon answers and you are root; also BERTH_START_DAEMON=1
    #[arg(long = "start-daemon", global = true)]
    pub start_daemon: bool,
    /// Print version information and quit
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(container::AttachArgs),
    /// Build an image from a Dockerfile (classic builder)
    Build(image::BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(image::BuilderCmd),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(container::CpArgs),
    /// Create a new container
    Create(run::RunArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::ContainerArg),
    /// Get real time events from the server
    Events(system::EventsArgs),
    /// Execute a command in a running container
    Exec(container::ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(container::ExportArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// List images
    Images(ImagesArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display system-wide information
    Info(FormatArg),
    /// Return low-level information on Berth objects
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Load an image from a tar archive or STDIN
    Load(image::LoadArgs),
    /// Authenticate to a registry
    Login(auth::LoginArgs),
    /// Log out from a registry
    Logout(auth::LogoutArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArg),
    /// List port mappings or a specific mapping for the container
    Port(container::PortArgs),
    /// List containers
    Ps(PsArgs),
    /// Download an image from a registry
    Pull(image::PullArgs),
    /// Upload an image to a registry
    Push(image::PushArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Restart one or more containers
    Restart(container::RestartArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image::SaveArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(container::StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArg),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Show the Berth version information
    Version(FormatArg),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArg),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage contexts
    #[command(subcommand)]
    Context(context::ContextCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage Berth
    #[command(subcommand)]
    System(system::SystemCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCmd),
    /// Generate shell completions and man pages
    #[command(subcommand)]
    Gen(gen::GenCmd),
    /// Names for shell completion (used by the completion scripts)
    #[command(name = "__complete", hide = true)]
    Complete(gen::CompleteArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Build an image from a Dockerfile (classic builder)
    Build(image::BuildArgs),
    /// Show the history of an image
    History(image::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(FormatNames),
    /// Load an image from a tar archive or STDIN
    Load(image::LoadArgs),
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove unused images
    Prune(image::PruneArgs),
    /// Download an image from a registry
    Pull(image::PullArgs),
    /// Upload an image to a registry
    Push(image::PushArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(image::SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
}

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(container::AttachArgs),
    /// Create a new image from a container's changes
    Commit(container::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(container::CpArgs),
    /// Create a new container
    Create(run::RunArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::ContainerArg),
    /// Execute a command in a running container
    Exec(container::ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(container::ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArg),
    /// List port mappings or a specific mapping for the container
    Port(container::PortArgs),
    /// Remove all stopped containers
    Prune(container::PruneArgs),
    /// Rename a container
    Rename(container::RenameArgs),
    /// Restart one or more containers
    Restart(container::RestartArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(container::StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(container::TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArg),
    /// Update configuration of one or more containers
    Update(container::UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArg),
}

#[derive(Args, Debug)]
pub struct ContainerInspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct FormatArg {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct FormatNames {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArg {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// file or - for stdin
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long = "digests")]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// Format output using a Go template
    #[arg(long = "format")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long = "details")]
    pub details: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long = "until")]
    pub until: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Return JSON for specified type (container, image)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach")]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

fn main() {
    // Default signal dispositions: like the docker CLI, a closed pipe (`berth ps | head`) ends
    // berth quietly instead of a write error.
    let _ = berth_sys::reset_signals();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // docker: an unknown command or missing arguments exit 1, flag errors 125
                ErrorKind::InvalidSubcommand
                | ErrorKind::MissingRequiredArgument
                | ErrorKind::MissingSubcommand
                | ErrorKind::TooFewValues
                | ErrorKind::WrongNumberOfValues => 1,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(cmds::dispatch(cli));
    // Do not wait for blocked stdin readers etc.
    rt.shutdown_timeout(std::time::Duration::from_millis(10));
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_flag_has_help_text() {
        fn walk(c: &clap::Command, path: &str) {
            for sub in c.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                assert!(sub.get_about().is_some(), "no help text for `{p}`");
                for a in sub.get_arguments() {
                    if a.is_hide_set() || a.get_id() == "help" {
                        continue;
                    }
                    assert!(
                        a.get_help().is_some() || a.is_positional(),
                        "no help for {p} --{}",
                        a.get_id()
                    );
                }
                walk(sub, &p);
            }
        }
        walk(&Cli::command(), "berth");
    }

    #[test]
    fn docker_aliases_parse() {
        for args in [
            &["berth", "container", "ls", "-a"][..],
            &["berth", "container", "list"],
            &["berth", "container", "ps"],
            &["berth", "image", "ls"],
            &["berth", "image", "list"],
            &["berth", "image", "rm", "x"],
            &["berth", "network", "ls"],
            &["berth", "volume", "list"],
            &["berth", "system", "df"],
            &["berth", "context", "ls"],
            &["berth", "exec", "-it", "c", "sh", "-c", "ls -l"],
            &["berth", "--context", "x", "ps"],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }
}
