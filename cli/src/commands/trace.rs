//! `strata trace`: one traced message's path, step by step.

use strata_proto::v1;
use strata_proxy::http::trace_json;

use super::print_json;
use crate::cli::{Format, TraceArgs};

pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let connection = args.server.connect().await?;
    let m = &args.message;
    let answer = connection
        .grpc()
        .trace(v1::TraceRequest {
            topic: m.topic.clone(),
            partition: m.partition,
            offset: m.offset,
            within_ms: args.within.unwrap_or(0),
        })
        .await?
        .into_inner();
    if let Some(e) = answer.error {
        anyhow::bail!("{} ({})", e.message, e.code);
    }
    if args.format.format == Format::Json {
        return print_json(&trace_json(&answer));
    }
    print!("{}", render(&answer));
    Ok(())
}

/// The path as a table: each step's time since the first and since the one before.
fn render(t: &v1::TraceResponse) -> String {
    let mut out = format!("message {}\n", t.message_id);
    out += &format!(
        "{:<24} {:>12} {:>12}  {:<16} {:<32} detail\n",
        "time (UTC)", "+first ms", "+prev ms", "step", "by"
    );
    let first = t.steps.first().map_or(0, |s| s.at_us);
    let mut previous = first;
    for s in &t.steps {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(s.at_us.max(0) as u64);
        out += &format!(
            "{:<24} {:>12.3} {:>12.3}  {:<16} {:<32} {}\n",
            humantime::format_rfc3339_millis(at).to_string(),
            (s.at_us - first) as f64 / 1000.0,
            (s.at_us - previous) as f64 / 1000.0,
            s.step,
            s.by,
            s.detail
        );
        previous = s.at_us;
    }
    if t.truncated {
        out += "(the search stopped at its bound, 256 MiB of trace records: later steps may exist past it)\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_prints_each_step_with_its_times() {
        let step = |step: &str, at_us| v1::TraceStep {
            step: step.into(),
            at_us,
            by: "proxy p".into(),
            detail: String::new(),
        };
        let text = render(&v1::TraceResponse {
            message_id: "orders/0/42".into(),
            steps: vec![step("received", 1_000_000), step("acked", 1_012_500)],
            ..Default::default()
        });
        assert!(text.starts_with("message orders/0/42\n"), "{text}");
        let acked = text.lines().find(|l| l.contains("acked")).unwrap();
        assert!(acked.contains("12.500"), "{acked}");
        assert!(acked.contains("1970-01-01T00:00:01.012Z"), "{acked}");
    }
}
