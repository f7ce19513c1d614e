//! Schedules: the faults and the workload of one run, generated from a seed.
//!
//! A [`Schedule`] is plain data: a [`Setup`] (cluster shape and timers) and
//! a list of [`Step`]s. The runner executes every step it can and skips the
//! ones that do not apply to the cluster as it is then (a restart of a live
//! node, a write at a crashed one), so deleting steps, which is what
//! shrinking does, always leaves a valid schedule.

use crate::Id;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt;

/// Which membership protocol the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Full mesh: operator-controlled members, tombstone collection.
    Mesh,
    /// HyParView partial views: tombstones are kept (no collection).
    HyParView,
}

/// The cluster's shape and timers, fixed for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Membership protocol.
    pub mode: Mode,
    /// Nodes that are members from the start.
    pub members: usize,
    /// Extra nodes (mesh only) that start outside the cluster and may be
    /// added by the operator.
    pub spares: usize,
    /// Whether writes are acknowledged by `PutDurable` (true) or by `put`
    /// returning (false; restarts then lose the store).
    pub durable: bool,
    /// Metadata GC tick, ms.
    pub gc_interval_ms: u64,
    /// How long collected tombstones are remembered, ms.
    pub collected_retention_ms: u64,
    /// Anti-entropy exchange tick, ms.
    pub exchange_interval_ms: u64,
    /// Frame latency, uniform in `[1, latency_max_ms]` ms.
    pub latency_max_ms: u64,
    /// Keys written (`k0`, `k1`, ...).
    pub keys: usize,
}

/// Where a write gets its causal context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    /// `None`: the node's own stored context.
    Blind,
    /// The context of a `get` at the same node just before the write.
    Fresh,
    /// The context of an earlier [`Step::Read`] kept in this slot (the
    /// write goes to that read's key); a blind write if the slot is empty.
    Stale(usize),
}

/// One write of a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOp {
    /// The coordinating node.
    pub node: Id,
    /// Key index.
    pub key: usize,
    /// A delete (tombstone) rather than a put.
    pub delete: bool,
    /// The context it is written with.
    pub ctx: Ctx,
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Let virtual time pass.
    Run {
        /// How long, ms.
        ms: u64,
    },
    /// Set the frame drop probability (0 ends a loss spike).
    Loss {
        /// Probability in `[0, 1]`.
        p: f64,
    },
    /// Split the nodes: `groups[i]` is node `i`'s group.
    Partition {
        /// Group per node.
        groups: Vec<u32>,
    },
    /// End the partition.
    Heal,
    /// Crash a node.
    Crash {
        /// The node.
        node: Id,
    },
    /// Restart a crashed (not removed) node, from its disk or wiped.
    Restart {
        /// The node.
        node: Id,
        /// From disk (`restart_from_disk`) or wiped (`restart`).
        disk: bool,
    },
    /// The operator removes a crashed member, through a live member.
    Remove {
        /// The member removed.
        node: Id,
        /// The member the operator talks to.
        via: Id,
    },
    /// The operator adds a spare or removed node (wiped first), through a
    /// live member.
    Add {
        /// The node added.
        node: Id,
        /// The member the operator talks to.
        via: Id,
    },
    /// Writes issued one virtual microsecond apart (concurrent: no frame
    /// travels that fast).
    Writes {
        /// The burst.
        ops: Vec<WriteOp>,
    },
    /// Read a key at a node and keep the read (its context) in a slot for a
    /// later stale write.
    Read {
        /// The node.
        node: Id,
        /// Key index.
        key: usize,
        /// The slot.
        slot: usize,
    },
    /// Plain broadcasts at a steady rate, round-robin over `origins`.
    Broadcasts {
        /// Senders.
        origins: Vec<Id>,
        /// Broadcasts per second.
        rate: u32,
        /// For how long, ms.
        ms: u64,
    },
}

/// Everything one run does, from one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The seed: it generated this schedule and seeds the bus (and through
    /// it every node).
    pub seed: u64,
    /// The cluster.
    pub setup: Setup,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// Knobs for generating schedules.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Members at the start (at least 3).
    pub nodes: usize,
    /// Steps per schedule.
    pub steps: usize,
    /// The highest plain broadcast rate drawn, per second.
    pub max_rate: u32,
    /// The longest broadcast burst, ms.
    pub max_burst_ms: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            nodes: 7,
            steps: 60,
            max_rate: 10_000,
            max_burst_ms: 2_000,
        }
    }
}

/// Slots for stale contexts.
pub(crate) const SLOTS: usize = 4;

/// The generator's idea of each node, so that steps mostly apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gen {
    Up,
    Down,
    Removed,
    Spare,
}

impl Schedule {
    /// The schedule of `seed`.
    pub fn generate(seed: u64, options: &GenOptions) -> Schedule {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x6a09_e667_f3bc_c908);
        let mode = if rng.random_bool(0.7) {
            Mode::Mesh
        } else {
            Mode::HyParView
        };
        let members = options.nodes.max(3);
        let spares = if mode == Mode::Mesh { rng.random_range(0..=2) } else { 0 };
        let setup = Setup {
            mode,
            members,
            spares,
            durable: mode == Mode::Mesh || rng.random_bool(0.5),
            gc_interval_ms: rng.random_range(200..=1_000),
            collected_retention_ms: if rng.random_bool(0.5) {
                rng.random_range(1_000..=5_000)
            } else {
                600_000
            },
            exchange_interval_ms: rng.random_range(1_000..=3_000),
            latency_max_ms: rng.random_range(1..=10),
            keys: rng.random_range(2..=6),
        };
        let total = members + spares;
        let mut state: Vec<Gen> = (0..total)
            .map(|i| if i < members { Gen::Up } else { Gen::Spare })
            .collect();
        let pick = |rng: &mut Xoshiro256PlusPlus, state: &[Gen], want: Gen| -> Option<Id> {
            let c: Vec<Id> = (0..state.len() as Id).filter(|&i| state[i as usize] == want).collect();
            (!c.is_empty()).then(|| c[rng.random_range(0..c.len())])
        };
        let mut steps = Vec::new();
        for _ in 0..options.steps {
            let roll = rng.random_range(0..100u32);
            let step = match roll {
                0..=27 => {
                    let n = rng.random_range(1..=8);
                    let mut ops = Vec::new();
                    for _ in 0..n {
                        let Some(node) = pick(&mut rng, &state, Gen::Up) else {
                            break;
                        };
                        let ctx = match rng.random_range(0..4) {
                            0 | 1 => Ctx::Blind,
                            2 => Ctx::Fresh,
                            _ => Ctx::Stale(rng.random_range(0..SLOTS)),
                        };
                        ops.push(WriteOp {
                            node,
                            key: rng.random_range(0..setup.keys),
                            delete: rng.random_bool(0.3),
                            ctx,
                        });
                    }
                    Step::Writes { ops }
                }
                28..=35 => match pick(&mut rng, &state, Gen::Up) {
                    Some(node) => Step::Read {
                        node,
                        key: rng.random_range(0..setup.keys),
                        slot: rng.random_range(0..SLOTS),
                    },
                    None => Step::Run { ms: 500 },
                },
                36..=47 => {
                    let k = rng.random_range(1..=2);
                    let origins: Vec<Id> = (0..k).filter_map(|_| pick(&mut rng, &state, Gen::Up)).collect();
                    // Log-uniform from 1/s to the maximum.
                    let max = f64::from(options.max_rate.max(1));
                    let rate = max.powf(rng.random::<f64>()).round().max(1.0) as u32;
                    Step::Broadcasts {
                        origins,
                        rate,
                        ms: rng.random_range(100..=options.max_burst_ms.max(100)),
                    }
                }
                48..=65 => Step::Run {
                    ms: rng.random_range(100..=5_000),
                },
                66..=72 => Step::Loss {
                    p: if rng.random_bool(0.5) {
                        0.0
                    } else {
                        [0.01, 0.05, 0.2, 0.5][rng.random_range(0..4)]
                    },
                },
                73..=78 => {
                    let k = rng.random_range(2..=3u32);
                    let groups = (0..total).map(|_| rng.random_range(0..k)).collect();
                    Step::Partition { groups }
                }
                79..=82 => Step::Heal,
                83..=88 => {
                    let down = state.iter().filter(|s| matches!(s, Gen::Down | Gen::Removed)).count();
                    match pick(&mut rng, &state, Gen::Up) {
                        Some(node) if down < members / 2 => {
                            state[node as usize] = Gen::Down;
                            Step::Crash { node }
                        }
                        _ => Step::Run { ms: 200 },
                    }
                }
                89..=94 => match pick(&mut rng, &state, Gen::Down) {
                    Some(node) => {
                        state[node as usize] = Gen::Up;
                        Step::Restart {
                            node,
                            disk: rng.random_bool(0.7),
                        }
                    }
                    None => Step::Run { ms: 200 },
                },
                _ if mode == Mode::Mesh => {
                    let via = pick(&mut rng, &state, Gen::Up);
                    let removable = pick(&mut rng, &state, Gen::Down);
                    let addable = pick(&mut rng, &state, Gen::Spare).or(pick(&mut rng, &state, Gen::Removed));
                    match (via, removable, addable, rng.random_bool(0.5)) {
                        (Some(via), Some(node), _, true) | (Some(via), Some(node), None, _) => {
                            state[node as usize] = Gen::Removed;
                            Step::Remove { node, via }
                        }
                        (Some(via), _, Some(node), _) => {
                            state[node as usize] = Gen::Up;
                            Step::Add { node, via }
                        }
                        _ => Step::Run { ms: 200 },
                    }
                }
                _ => Step::Run { ms: 200 },
            };
            steps.push(step);
        }
        Schedule { seed, setup, steps }
    }
}

impl fmt::Display for WriteOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.delete { "del" } else { "put" };
        match self.ctx {
            Ctx::Blind => write!(f, "{what} k{}@{}", self.key, self.node),
            Ctx::Fresh => write!(f, "{what} k{}@{} (fresh ctx)", self.key, self.node),
            Ctx::Stale(s) => write!(
                f,
                "{what} @{} (ctx of slot {s}; blind on k{} if the slot is empty)",
                self.node, self.key
            ),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Run { ms } => write!(f, "run {ms} ms"),
            Step::Loss { p } => write!(f, "loss {p}"),
            Step::Partition { groups } => {
                write!(f, "partition")?;
                let max = groups.iter().copied().max().unwrap_or(0);
                for g in 0..=max {
                    let members: Vec<String> = groups
                        .iter()
                        .enumerate()
                        .filter(|(_, x)| **x == g)
                        .map(|(i, _)| i.to_string())
                        .collect();
                    write!(f, " {{{}}}", members.join(","))?;
                }
                Ok(())
            }
            Step::Heal => write!(f, "heal"),
            Step::Crash { node } => write!(f, "crash {node}"),
            Step::Restart { node, disk } => {
                write!(f, "restart {node} {}", if *disk { "from disk" } else { "wiped" })
            }
            Step::Remove { node, via } => write!(f, "remove member {node} via {via}"),
            Step::Add { node, via } => write!(f, "add member {node} via {via}"),
            Step::Writes { ops } => {
                let ops: Vec<String> = ops.iter().map(ToString::to_string).collect();
                write!(f, "writes [{}]", ops.join("; "))
            }
            Step::Read { node, key, slot } => write!(f, "read k{key}@{node} into slot {slot}"),
            Step::Broadcasts { origins, rate, ms } => {
                write!(f, "broadcasts {rate}/s for {ms} ms from {origins:?}")
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.setup;
        writeln!(
            f,
            "seed {}: {:?}, {} members + {} spares, durable {}, gc {} ms, collected retention {} ms, exchange {} ms, \
             latency 1..{} ms, {} keys",
            self.seed,
            s.mode,
            s.members,
            s.spares,
            s.durable,
            s.gc_interval_ms,
            s.collected_retention_ms,
            s.exchange_interval_ms,
            s.latency_max_ms,
            s.keys
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {i:>3}. {step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule() {
        let o = GenOptions::default();
        assert_eq!(Schedule::generate(5, &o), Schedule::generate(5, &o));
        assert_ne!(Schedule::generate(5, &o), Schedule::generate(6, &o));
    }
}
