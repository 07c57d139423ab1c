//! Property test of a pool: under any interleaving of submits, container
//! starts and losses, outputs (successes and retried failures), callers
//! going away, cancellations and a final stop, every input whose caller
//! still waits reaches exactly one outcome, and every input is counted as
//! ended exactly once.

use std::path::PathBuf;

use proptest::prelude::*;
use tokio::sync::mpsc;

use super::{Pending, Pool, Reply, failure};
use crate::options::FunctionOptions;
use crate::proto::{self, container_command, outcome};
use crate::registry::{FunctionManifest, Manifest};
use crate::server::store::StoredVersion;
use crate::server::telemetry::Telemetry;

#[derive(Debug, Clone)]
enum Op {
    /// Queue this many inputs.
    Submit(u8),
    /// Start a container (it connects at once).
    Start,
    /// The container at this position answers one of its inputs.
    Answer { container: u8, input: u8, ok: bool },
    /// The container at this position is lost.
    Lose(u8),
    /// The caller of the input at this position goes away.
    Leave(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..20_u8).prop_map(Op::Submit),
        2 => Just(Op::Start),
        6 => (any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(container, input, ok)| Op::Answer { container, input, ok }),
        1 => any::<u8>().prop_map(Op::Lose),
        1 => any::<u8>().prop_map(Op::Leave),
    ]
}

type Outputs = mpsc::UnboundedReceiver<(proto::MapOutput, u32)>;
type Commands = mpsc::UnboundedReceiver<Result<proto::ContainerCommand, tonic::Status>>;

struct Container {
    id: String,
    commands: Commands,
    /// Inputs it was sent and has not answered, in the order sent.
    running: Vec<u64>,
}

fn pool(retries: u32) -> (Pool, Telemetry) {
    let options = FunctionOptions {
        retries,
        retry_initial_delay_ms: 0,
        ..FunctionOptions::DEFAULT
    };
    let manifest = FunctionManifest::for_tests("f", options);
    let version = StoredVersion {
        name: "app".into(),
        version: 1,
        binary: PathBuf::from("/bin/true"),
        binary_sha256: String::new(),
        manifest: Manifest {
            functions: vec![manifest.clone()],
        },
        created_at_ms: 0,
        rolled_back_from: None,
        function_ids: Default::default(),
    };
    let telemetry = Telemetry::new();
    let pool = Pool::new(1, &version, &manifest, 4, telemetry.pool("app", "f", &[]));
    (pool, telemetry)
}

/// Inputs the telemetry counted as ended, succeeded or failed.
fn endings_counted(telemetry: &Telemetry) -> u64 {
    telemetry
        .render()
        .lines()
        .filter(|l| {
            l.starts_with("modal_inputs_succeeded_total{")
                || l.starts_with("modal_inputs_failed_total{")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn value(ok: bool) -> proto::Outcome {
    if ok {
        proto::Outcome {
            result: Some(outcome::Result::Value(bytes::Bytes::from_static(b"\x01"))),
        }
    } else {
        failure(proto::FailureKind::UserError, "no", "")
    }
}

/// Moves what the pool sent each container into the model.
fn drain_commands(containers: &mut [Container]) {
    for c in containers {
        while let Ok(Ok(command)) = c.commands.try_recv() {
            match command.cmd {
                Some(container_command::Cmd::Inputs(batch)) => {
                    c.running.extend(batch.inputs.iter().map(|i| i.input_id));
                }
                Some(container_command::Cmd::Cancel(cancel)) => {
                    c.running.retain(|id| *id != cancel.input_id);
                }
                _ => {}
            }
        }
    }
}

fn run(ops: Vec<Op>, retries: u32) -> Result<(), TestCaseError> {
    let (pool, telemetry) = pool(retries);
    let mut next_input = 0_u64;
    let mut callers: Vec<(u64, Option<Outputs>)> = Vec::new();
    let mut containers: Vec<Container> = Vec::new();
    let mut next_container = 0;
    let resubmit = |pool: &Pool, again: Vec<(Pending, std::time::Duration)>| {
        pool.submit(again.into_iter().map(|(p, _)| p).collect());
    };
    for op in ops {
        match op {
            Op::Submit(n) => {
                let inputs = (0..n)
                    .map(|_| {
                        next_input += 1;
                        let (sink, rx) = mpsc::unbounded_channel();
                        callers.push((next_input, Some(rx)));
                        let reply = Reply::Map {
                            index: next_input,
                            kib: 1,
                            sink,
                        };
                        Pending::new(next_input, String::new(), bytes::Bytes::new(), reply)
                    })
                    .collect();
                pool.submit(inputs);
            }
            Op::Start => {
                next_container += 1;
                let id = format!("c-{next_container}");
                pool.starting(std::slice::from_ref(&id));
                let (tx, commands) = mpsc::unbounded_channel();
                prop_assert!(pool.connected(&id, tx));
                containers.push(Container {
                    id,
                    commands,
                    running: Vec::new(),
                });
            }
            Op::Answer {
                container,
                input,
                ok,
            } => {
                drain_commands(&mut containers);
                if containers.is_empty() {
                    continue;
                }
                let len = containers.len();
                let c = &mut containers[container as usize % len];
                if c.running.is_empty() {
                    continue;
                }
                let input_id = c.running.remove(input as usize % c.running.len());
                let output = proto::ContainerOutput {
                    input_id,
                    outcome: Some(value(ok)),
                    exec_us: 100,
                };
                let again = pool.outputs(&c.id, vec![output]);
                resubmit(&pool, again);
            }
            Op::Lose(at) => {
                if containers.is_empty() {
                    continue;
                }
                let c = containers.remove(at as usize % containers.len());
                pool.container_gone(&c.id, "was lost", crate::server::backend::ExitCause::Ended);
            }
            Op::Leave(at) => {
                if callers.is_empty() {
                    continue;
                }
                let len = callers.len();
                callers[at as usize % len].1 = None;
                pool.drop_settled();
            }
        }
    }
    // The app stops: the queue fails, and so do the inputs still running.
    pool.stop();
    drain_commands(&mut containers);
    for c in containers {
        pool.container_gone(
            &c.id,
            "was stopped",
            crate::server::backend::ExitCause::Ended,
        );
    }
    for (input, rx) in callers.iter_mut() {
        let Some(rx) = rx else { continue };
        let mut outcomes = 0;
        while let Ok((output, _)) = rx.try_recv() {
            prop_assert_eq!(output.index, *input);
            outcomes += 1;
        }
        prop_assert_eq!(outcomes, 1, "input {} got {} outcomes", input, outcomes);
    }
    prop_assert_eq!(endings_counted(&telemetry), next_input);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_waiting_input_reaches_exactly_one_outcome(
        ops in proptest::collection::vec(op(), 0..80),
        retries in 0..3_u32,
    ) {
        run(ops, retries)?;
    }
}

#[test]
fn a_lost_container_s_inputs_run_again_then_fail() {
    let ops = vec![
        Op::Submit(1),
        Op::Start,
        Op::Lose(0),
        Op::Start,
        Op::Lose(0),
        Op::Start,
        Op::Lose(0),
        Op::Start,
        Op::Lose(0),
    ];
    run(ops, 0).unwrap();
}
