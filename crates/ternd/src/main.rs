//! `ternd`: the tern TCP termination daemon.
//!
//! ```text
//! ternd run   --config ternd.toml [--interface IF] [--listen ADDR:PORT=APP]... [--set KEY=VALUE]...
//! ternd check --config ternd.toml ...     preflight only: nothing is attached
//! ternd cleanup --interface IF            remove what a crashed ternd left attached
//! ```

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use ternd::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "ternd",
    version,
    about = "tern's kernel-bypass TCP termination daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach, serve until SIGINT/SIGTERM, drain, detach.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Write a JSON snapshot of every counter here each stats interval and at exit.
        #[arg(long, value_name = "FILE")]
        stats_json: Option<PathBuf>,
    },
    /// Check the configuration, interface, queues and XDP program without attaching.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Detach and unpin what a crashed ternd left on an interface.
    Cleanup {
        /// The interface.
        #[arg(long, short = 'i')]
        interface: String,
    },
}

#[derive(Args)]
struct ConfigArgs {
    /// TOML configuration file (docs/configuration.md lists the keys).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The interface (overrides `interface`).
    #[arg(long, short = 'i')]
    interface: Option<String>,
    /// Receive queues to serve, from queue 0 (overrides `queues`; default: all).
    #[arg(long)]
    queues: Option<u32>,
    /// A listener, ADDRESS:PORT=APP with APP one of echo, discard, http, banner (repeatable).
    #[arg(long, value_name = "ADDR:PORT=APP")]
    listen: Vec<String>,
    /// Set any configuration key, e.g. tcp.rto_min=300ms or tcp.syncookies=always (repeatable).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config> {
        let overrides = Overrides {
            interface: self.interface.clone(),
            queues: self.queues,
            listen: self.listen.clone(),
            set: self.set.clone(),
        };
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    tern_bpf::log_libbpf_through_log();
    tern_xsk::log_libxdp_through_log();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, stats_json } => config.load().and_then(|c| {
            let totals = ternd::daemon::run(c, stats_json, Arc::new(AtomicBool::new(false)))?;
            print!("{}", totals.final_report());
            Ok(())
        }),
        Command::Check { config } => config.load().and_then(|c| {
            for line in ternd::daemon::check(&c)? {
                println!("{line}");
            }
            println!("ok");
            Ok(())
        }),
        Command::Cleanup { interface } => {
            ternd::daemon::cleanup(&interface).map(|s| println!("{s}"))
        }
    };
    if let Err(e) = result {
        eprintln!("ternd: {e:#}");
        std::process::exit(1);
    }
}
