//! Arguments of `strata acl`, in the style of Kafka's `kafka-acls.sh`.

use clap::{Args, Subcommand};

use super::{AdminArgs, FormatArgs};

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add rules: every principal given gets every operation given on the resource (deny
    /// wins over allow). Rules apply everywhere within 2 seconds.
    Add(AclAddArgs),
    /// List the rules the filters match (every rule without filters).
    List {
        #[command(flatten)]
        filter: AclFilterArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Remove the rules the filters match; with no filter, only with --all.
    Remove {
        #[command(flatten)]
        filter: AclFilterArgs,
        /// Remove every rule the filters match even when no filter is given: every rule.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        format: FormatArgs,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("principals").required(true).multiple(true))]
#[command(group = clap::ArgGroup::new("resource").required(true)
    .args(["topic", "group", "cluster", "transactional_id"]))]
pub struct AclAddArgs {
    /// A principal the rules allow, `User:<name>` or `User:*` for everyone (repeatable).
    #[arg(
        long = "allow-principal",
        value_name = "PRINCIPAL",
        group = "principals"
    )]
    pub allow_principals: Vec<String>,
    /// A principal the rules deny (repeatable); a deny wins over every allow.
    #[arg(
        long = "deny-principal",
        value_name = "PRINCIPAL",
        group = "principals"
    )]
    pub deny_principals: Vec<String>,
    /// An operation (repeatable): All, Read, Write, Create, Delete, Alter, Describe,
    /// ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite; any case, and
    /// `idempotent-write` works too.
    #[arg(long = "operation", value_name = "OPERATION", required = true)]
    pub operations: Vec<String>,
    #[command(flatten)]
    pub resource: AclResourceArgs,
    /// The name is a prefix: the rules hold for every resource whose name starts with it.
    #[arg(long)]
    pub prefixed: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// One resource: a topic, a group, the cluster or a transactional id. `*` names all of a kind.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct AclResourceArgs {
    /// A topic (`*` for every topic).
    #[arg(long)]
    pub topic: Option<String>,
    /// A consumer group (`*` for every group).
    #[arg(long)]
    pub group: Option<String>,
    /// The cluster itself (`kafka-cluster`): creating topics, managing users and rules,
    /// reassignment, IdempotentWrite.
    #[arg(long)]
    pub cluster: bool,
    /// A transactional id (`*` for every one).
    #[arg(long)]
    pub transactional_id: Option<String>,
}

/// Which rules a listing or a removal is about; each filter left out matches anything.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("pattern").args(["prefixed", "literal", "match_"]))]
#[command(group = clap::ArgGroup::new("permission").args(["allow", "deny"]))]
pub struct AclFilterArgs {
    /// Rules about this principal (`User:*` for the rules about everyone).
    #[arg(long, value_name = "PRINCIPAL")]
    pub principal: Option<String>,
    #[command(flatten)]
    pub resource: AclResourceArgs,
    /// Only rules whose name is a prefix.
    #[arg(long)]
    pub prefixed: bool,
    /// Only rules whose name is literal.
    #[arg(long)]
    pub literal: bool,
    /// Every rule that applies to the resource named: its literal rules, `*`, and the
    /// prefixes its name starts with.
    #[arg(long = "match", id = "match_", requires = "AclResourceArgs")]
    pub match_: bool,
    /// Rules on this operation (any case).
    #[arg(long, value_name = "OPERATION")]
    pub operation: Option<String>,
    /// Only rules that allow.
    #[arg(long)]
    pub allow: bool,
    /// Only rules that deny.
    #[arg(long)]
    pub deny: bool,
}
