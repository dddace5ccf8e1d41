//! `strata acl add|list|remove`, through the admin API's `/v1/acls`. Names of operations and
//! kinds are passed as typed: the server reads them in any case and names the choices when one
//! is unknown.

use reqwest::Method;
use serde_json::{Value, json};

use super::admin_api::call;
use super::print_json;
use crate::cli::{AclAddArgs, AclCommand, AclFilterArgs, AclResourceArgs, Format};
use crate::report::{CliError, Failure};

/// The one name of the cluster resource, as Kafka spells it.
const CLUSTER_NAME: &str = "kafka-cluster";

pub async fn run(command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Add(args) => add(args).await,
        AclCommand::List {
            filter,
            admin,
            format,
        } => {
            let rules = call(Method::GET, &admin, &path(&filter, false), None).await?;
            if format.format == Format::Json {
                return print_json(&rules);
            }
            print_rules(&rules);
            Ok(())
        }
        AclCommand::Remove {
            filter,
            all,
            admin,
            format,
        } => {
            if !filter.narrows() && !all {
                return Err(CliError::new(
                    Failure::Usage,
                    "no filter given: that would remove every rule",
                )
                .with_hint(
                    "name what to remove (--principal, --topic, --group, --cluster, \
                     --transactional-id, --operation, ...), or pass --all to remove every rule",
                )
                .into());
            }
            let answer = call(Method::DELETE, &admin, &path(&filter, all), None).await?;
            if format.format == Format::Json {
                return print_json(&answer);
            }
            eprintln!("removed:");
            print_rules(&answer["removed"]);
            Ok(())
        }
    }
}

async fn add(args: AclAddArgs) -> anyhow::Result<()> {
    let (resource_type, resource_name) = args.resource.resource().ok_or_else(|| {
        CliError::new(
            Failure::Usage,
            "name the resource: --topic, --group, --cluster or --transactional-id",
        )
    })?;
    let pattern_type = if args.prefixed { "Prefixed" } else { "Literal" };
    let principals = args
        .allow_principals
        .iter()
        .map(|p| (p, "Allow"))
        .chain(args.deny_principals.iter().map(|p| (p, "Deny")));
    let mut rules = Vec::new();
    for (principal, permission) in principals {
        for operation in &args.operations {
            rules.push(json!({
                "principal": principal,
                "resource_type": resource_type,
                "pattern_type": pattern_type,
                "resource_name": resource_name,
                "operation": operation,
                "permission": permission,
            }));
        }
    }
    let answer = call(
        Method::POST,
        &args.admin,
        "/v1/acls",
        Some(json!({ "rules": rules })),
    )
    .await?;
    if args.format.format == Format::Json {
        return print_json(&answer);
    }
    eprintln!("added:");
    print_rules(&answer["rules"]);
    Ok(())
}

impl AclResourceArgs {
    /// The resource's kind and name, as the admin API spells them.
    fn resource(&self) -> Option<(&'static str, String)> {
        if let Some(topic) = &self.topic {
            Some(("Topic", topic.clone()))
        } else if let Some(group) = &self.group {
            Some(("Group", group.clone()))
        } else if self.cluster {
            Some(("Cluster", CLUSTER_NAME.to_owned()))
        } else {
            self.transactional_id
                .as_ref()
                .map(|id| ("TransactionalId", id.clone()))
        }
    }
}

impl AclFilterArgs {
    /// Whether some filter is given, so the rules matched are not simply all of them.
    fn narrows(&self) -> bool {
        self.principal.is_some()
            || self.resource.resource().is_some()
            || self.prefixed
            || self.literal
            || self.operation.is_some()
            || self.allow
            || self.deny
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(principal) = &self.principal {
            pairs.push(("principal", principal.clone()));
        }
        if let Some((kind, name)) = self.resource.resource() {
            pairs.push(("resource_type", kind.to_owned()));
            pairs.push(("resource_name", name));
        }
        let pattern = [
            (self.prefixed, "prefixed"),
            (self.literal, "literal"),
            (self.match_, "match"),
        ];
        if let Some((_, name)) = pattern.iter().find(|(given, _)| *given) {
            pairs.push(("pattern", (*name).to_owned()));
        }
        if let Some(operation) = &self.operation {
            pairs.push(("operation", operation.clone()));
        }
        if self.allow {
            pairs.push(("permission", "allow".to_owned()));
        } else if self.deny {
            pairs.push(("permission", "deny".to_owned()));
        }
        pairs
    }
}

/// `/v1/acls` with the filter as its query, each value escaped.
fn path(filter: &AclFilterArgs, all: bool) -> String {
    let mut pairs = filter.query();
    if all {
        pairs.push(("all", "true".to_owned()));
    }
    if pairs.is_empty() {
        return "/v1/acls".to_owned();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", escape(v)))
        .collect();
    format!("/v1/acls?{}", query.join("&"))
}

/// Percent-encoding of a query value: everything but unreserved characters (RFC 3986).
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Rules as a table, and their count on standard error.
fn print_rules(rules: &Value) {
    let list = rules.as_array().cloned().unwrap_or_default();
    let field = |r: &Value, name: &str| r[name].as_str().unwrap_or("?").to_owned();
    println!(
        "{:<24} {:<10} {:<16} {:<16} {:<9} resource",
        "principal", "permission", "operation", "resource_type", "pattern"
    );
    for r in &list {
        println!(
            "{:<24} {:<10} {:<16} {:<16} {:<9} {}",
            field(r, "principal"),
            field(r, "permission"),
            field(r, "operation"),
            field(r, "resource_type"),
            field(r, "pattern_type"),
            field(r, "resource_name"),
        );
    }
    eprintln!("{} rules", list.len());
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &str) -> Result<AclCommand, clap::Error> {
        let all = ["strata", "acl"].into_iter().chain(args.split_whitespace());
        match Cli::try_parse_from(all)?.command {
            Command::Acl(command) => Ok(command),
            other => panic!("not an acl command: {other:?}"),
        }
    }

    #[test]
    fn the_flags_read_as_kafka_acls_does() {
        let mut command = Cli::command();
        command.build();
        command
            .find_subcommand("acl")
            .expect("strata acl")
            .clone()
            .debug_assert();
        let Ok(AclCommand::Add(add)) = parse(
            "add --allow-principal User:a --deny-principal User:b --operation read \
             --operation Write --topic orders --prefixed",
        ) else {
            panic!("add parses");
        };
        assert_eq!(add.allow_principals, ["User:a"]);
        assert_eq!(add.deny_principals, ["User:b"]);
        assert_eq!(add.operations, ["read", "Write"]);
        assert_eq!(
            add.resource.resource(),
            Some(("Topic", "orders".to_owned()))
        );
        assert!(add.prefixed);
        for refused in [
            "add --operation Read --topic t",
            "add --allow-principal User:a --topic t",
            "add --allow-principal User:a --operation Read",
            "add --allow-principal User:a --operation Read --topic t --group g",
            "list --match",
            "list --topic t --prefixed --literal",
            "list --allow --deny",
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
        let Ok(AclCommand::List { filter, .. }) =
            parse("list --principal User:a --cluster --match --operation READ --deny")
        else {
            panic!("list parses");
        };
        assert_eq!(
            path(&filter, false),
            "/v1/acls?principal=User%3Aa&resource_type=Cluster&resource_name=kafka-cluster\
             &pattern=match&operation=READ&permission=deny"
        );
        let Ok(AclCommand::Remove { filter, all, .. }) = parse("remove --all") else {
            panic!("remove parses");
        };
        assert!(all && !filter.narrows());
        assert_eq!(path(&filter, all), "/v1/acls?all=true");
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(escape("User:alice"), "User%3Aalice");
        assert_eq!(escape("a&b=c*"), "a%26b%3Dc%2A");
        assert_eq!(escape("orders.v1_x-y~"), "orders.v1_x-y~");
    }
}
