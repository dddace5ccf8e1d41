//! Arguments of `strata trace`: one traced message's path.

use clap::Args;

use super::{FormatArgs, ServerArgs, parse_duration_ms};

/// `strata trace`: the steps of one traced message, in time order.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The message: `TOPIC/PARTITION/OFFSET`, as `strata produce` and `strata consume` print
    /// them.
    #[arg(value_parser = parse_message_id)]
    pub message: MessageId,
    /// How long after the message to look for its steps (`10m`, `1h`, `2d`); default 1h.
    #[arg(long, value_parser = parse_duration_ms)]
    pub within: Option<i64>,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Where a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
}

/// `TOPIC/PARTITION/OFFSET`; topic names cannot hold a `/`.
pub fn parse_message_id(text: &str) -> Result<MessageId, String> {
    let wrong = || {
        format!("`{text}` is not a message id: write TOPIC/PARTITION/OFFSET, such as orders/0/42")
    };
    let mut parts = text.rsplitn(3, '/');
    let (Some(offset), Some(partition), Some(topic)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(wrong());
    };
    if topic.is_empty() {
        return Err(wrong());
    }
    Ok(MessageId {
        topic: topic.to_owned(),
        partition: partition.parse().map_err(|_| wrong())?,
        offset: offset.parse().map_err(|_| wrong())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_split_at_the_last_two_slashes() {
        assert_eq!(
            parse_message_id("orders/3/42"),
            Ok(MessageId {
                topic: "orders".into(),
                partition: 3,
                offset: 42
            })
        );
        for bad in [
            "orders",
            "orders/3",
            "/3/42",
            "orders/x/42",
            "orders/3/-",
            "",
        ] {
            let e = parse_message_id(bad).unwrap_err();
            assert!(e.contains("TOPIC/PARTITION/OFFSET"), "{bad}: {e}");
        }
    }
}
