//! `upward users`: the people who may use `upward serve` (tokens stored argon2-hashed in
//! the data dir's users file).

use super::Global;
use upward::server::Users;

/// `upward users` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user; prints their new token alone on the last line (shown once).
    Add {
        /// User name: letters, digits, '-' or '_'.
        name: String,
    },
    /// List the users.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user: their token stops working at once (their sessions stay on disk).
    Remove {
        /// User name.
        name: String,
    },
}

/// Runs `upward users`.
pub fn run(cmd: UsersCommand, g: &Global) -> anyhow::Result<()> {
    let dir = upward::store::data_dir(g.data_dir.as_deref())?;
    let mut users = Users::load(&dir)?;
    let lang = g.lang();
    match cmd {
        UsersCommand::Add { name } => {
            let token = users.add(&name)?;
            println!(
                "{}",
                match lang {
                    upward::lang::Lang::Zh =>
                        format!("已添加用户 {name}。下面是其令牌（只显示这一次，请私下交给本人）："),
                    upward::lang::Lang::En => format!(
                        "Added user {name}. Their token (shown only now; hand it over privately):"
                    ),
                }
            );
            println!("{token}");
        }
        UsersCommand::List { json } => {
            if json {
                let v: Vec<_> = users
                    .list()
                    .iter()
                    .map(|u| serde_json::json!({ "name": u.name, "created": u.created }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if users.is_empty() {
                println!(
                    "{}",
                    lang.pick(
                        "还没有用户（upward serve 只在本机回环地址上提供服务）。",
                        "No users (upward serve listens on loopback only)."
                    )
                );
            } else {
                for u in users.list() {
                    println!("{:<24} {}", u.name, u.created);
                }
            }
        }
        UsersCommand::Remove { name } => {
            users.remove(&name)?;
            println!("{}", lang.pick("已删除用户 ", "Removed user ").to_string() + &name);
        }
    }
    Ok(())
}
