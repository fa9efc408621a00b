//! Command-line interface. The doc comments are the `--help` text.

use argh::FromArgs;

/// openpush: a small, self-hosted push server for a family's phones (OpenPush v0.1 API).
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    /// the command; without one, `--version` or `--help`
    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// the commands of `openpush`
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    /// `openpush serve`.
    Serve(Serve),
    /// `openpush user …`.
    User(User),
    /// `openpush client …`.
    Client(Client),
    /// `openpush topic …`.
    Topic(Topic),
    /// `openpush token …`.
    Token(Token),
}

/// Run the server.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// address to listen on, e.g. 0.0.0.0:8080 or [::]:8080; repeat for several
    /// (default 127.0.0.1:8080)
    // The text is argh's help, where `[::]` is an address, not a link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[argh(option)]
    pub listen: Vec<String>,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file: `key = value` lines, see docs/configuration.md for every key
    #[argh(option)]
    pub config: Option<String>,
    /// log level: error, warn, info, debug or trace (default info)
    #[argh(option)]
    pub log_level: Option<String>,
    /// check the configuration, print the effective values and exit
    #[argh(switch)]
    pub check: bool,
}

/// Manage users (works with the server running or stopped).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "user")]
pub struct User {
    /// what to do
    #[argh(subcommand)]
    pub action: UserAction,
}

/// the commands of `openpush user`
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum UserAction {
    /// `openpush user add`.
    Add(UserAdd),
    /// `openpush user list`.
    List(UserList),
    /// `openpush user passwd`.
    Passwd(UserPasswd),
    /// `openpush user del`.
    Del(UserDel),
}

/// Create a user. The first user of a database is an administrator.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct UserAdd {
    /// user name
    #[argh(positional)]
    pub name: String,
    /// read the password from the first line of standard input instead of prompting
    #[argh(switch)]
    pub password_stdin: bool,
    /// make the user an administrator (may manage other users through the API)
    #[argh(switch)]
    pub admin: bool,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// List users.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct UserList {
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Set a user's password; the ntfy subscriptions opened with the old one are disconnected.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "passwd")]
pub struct UserPasswd {
    /// user name
    #[argh(positional)]
    pub name: String,
    /// read the password from the first line of standard input instead of prompting
    #[argh(switch)]
    pub password_stdin: bool,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Delete a user with all its clients, applications, topics and queued messages; its
/// subscriptions are disconnected.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "del")]
pub struct UserDel {
    /// user name
    #[argh(positional)]
    pub name: String,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Manage clients, i.e. devices (works with the server running or stopped).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "client")]
pub struct Client {
    /// what to do
    #[argh(subcommand)]
    pub action: ClientAction,
}

/// the commands of `openpush client`
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ClientAction {
    /// `openpush client add`.
    Add(ClientAdd),
    /// `openpush client list`.
    List(ClientList),
    /// `openpush client del`.
    Del(ClientDel),
}

/// Create a client for a user and print its key (give it to the phone's push client).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct ClientAdd {
    /// the user that owns the client
    #[argh(option)]
    pub user: String,
    /// client name, e.g. "Anna's phone"
    #[argh(positional)]
    pub name: String,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// List clients with their keys, of one user or of all.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct ClientList {
    /// only this user's clients
    #[argh(option)]
    pub user: Option<String>,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Delete a client: revokes its key and its applications' routing tokens.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "del")]
pub struct ClientDel {
    /// the user that owns the client
    #[argh(option)]
    pub user: String,
    /// client name or id
    #[argh(positional)]
    pub name: String,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Manage users' ntfy access tokens (Home Assistant and other ntfy clients make them with
/// POST /v1/account/token; works with the server running or stopped).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct Token {
    /// what to do
    #[argh(subcommand)]
    pub action: TokenAction,
}

/// the commands of `openpush token`
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TokenAction {
    /// `openpush token list`.
    List(TokenList),
    /// `openpush token del`.
    Del(TokenDel),
}

/// List a user's access tokens: number, label, last use, expiry (never the tokens).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct TokenList {
    /// the user whose tokens to list
    #[argh(option)]
    pub user: String,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Revoke one of a user's access tokens; the streams opened with it end.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "del")]
pub struct TokenDel {
    /// the user that owns the token
    #[argh(option)]
    pub user: String,
    /// the token's number (as `token list` shows it) or the token itself
    #[argh(positional)]
    pub token: String,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Manage ntfy topics: who owns them, who else may use them (works with the server running
/// or stopped).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "topic")]
pub struct Topic {
    /// what to do
    #[argh(subcommand)]
    pub action: TopicAction,
}

/// the commands of `openpush topic`
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TopicAction {
    /// `openpush topic list`.
    List(TopicList),
    /// `openpush topic grant`.
    Grant(TopicGrant),
    /// `openpush topic del`.
    Del(TopicDel),
}

/// List topics with their owner, grants and queued messages.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct TopicList {
    /// only the topics this user owns
    #[argh(option)]
    pub user: Option<String>,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Let another user read and/or write a topic; neither --read nor --write takes the grant back.
/// Without --read, the user's subscriptions to the topic are disconnected.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "grant")]
pub struct TopicGrant {
    /// the topic
    #[argh(positional)]
    pub topic: String,
    /// the user to grant it to
    #[argh(positional)]
    pub user: String,
    /// may subscribe
    #[argh(switch)]
    pub read: bool,
    /// may publish
    #[argh(switch)]
    pub write: bool,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

/// Delete a topic with its queued messages; its subscribers are disconnected.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "del")]
pub struct TopicDel {
    /// the topic
    #[argh(positional)]
    pub topic: String,
    /// database file (default openpush.redb, in $STATE_DIRECTORY when set)
    #[argh(option)]
    pub db: Option<String>,
    /// config file to take the database path from
    #[argh(option)]
    pub config: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_serve_with_repeated_listen() {
        let cli = Cli::from_args(
            &["openpush"],
            &["serve", "--listen", "127.0.0.1:1", "--listen", "[::1]:2"],
        )
        .unwrap();
        match cli.command {
            Some(Command::Serve(s)) => assert_eq!(s.listen.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_client_add() {
        let cli = Cli::from_args(
            &["openpush"],
            &["client", "add", "--user", "ann", "phone", "--db", "x.redb"],
        )
        .unwrap();
        match cli.command {
            Some(Command::Client(Client {
                action: ClientAction::Add(a),
            })) => {
                assert_eq!(
                    (a.user.as_str(), a.name.as_str(), a.db.as_deref()),
                    ("ann", "phone", Some("x.redb"))
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
