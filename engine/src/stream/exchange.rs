//! The streaming exchange: routes rows to the operator instance that owns their key group
//! (the rule of `sluice-state`, so keyed state lands where its keys arrive) and carries
//! watermarks, which it aligns: a consumer's watermark is the minimum over all producers
//! (a finished producer counts as `i64::MAX`). Channels are bounded; a producer that finds
//! its consumer's channel full waits, and the time it waited is its back-pressure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use sluice_state::{key_group_for_key, operator_for_key_group};

use crate::error::{Result, SluiceError};
use crate::physical::exchange::split_rows;
use crate::physical::expr::PhysExpr;
use crate::physical::{Element, ElementStream, ExecNode, TaskContext};

/// Key groups of streaming state (Flink's default for small jobs).
pub const MAX_PARALLELISM: u32 = 128;

/// Time producers spent blocked on full channels, against their running time.
#[derive(Debug, Default)]
pub struct BackPressure {
    /// Nanoseconds blocked on output.
    pub blocked_ns: AtomicU64,
    /// Nanoseconds from the producers' start to their end, summed.
    pub running_ns: AtomicU64,
}

impl BackPressure {
    /// Fraction of time producers were blocked on output (0..1).
    pub fn ratio(&self) -> f64 {
        let run = self.running_ns.load(Ordering::Relaxed);
        if run == 0 {
            return 0.0;
        }
        self.blocked_ns.load(Ordering::Relaxed) as f64 / run as f64
    }

    /// Flink's levels: OK (≤ 10 %), LOW (≤ 50 %), HIGH.
    pub fn level(&self) -> &'static str {
        match self.ratio() {
            r if r <= 0.1 => "OK",
            r if r <= 0.5 => "LOW",
            _ => "HIGH",
        }
    }
}

type Message = (usize, Result<Element>);

/// The plan node.
#[derive(Debug)]
pub struct StreamExchangeExec {
    input: Arc<dyn ExecNode>,
    keys: Vec<PhysExpr>,
    partitions: usize,
    receivers: Mutex<Option<Vec<Option<Receiver<Message>>>>>,
    /// Back-pressure of the producers.
    pub back_pressure: Arc<BackPressure>,
}

impl StreamExchangeExec {
    /// Routes `input` by the key group of `keys` to `partitions` consumers.
    pub fn new(input: Arc<dyn ExecNode>, keys: Vec<PhysExpr>, partitions: usize) -> Self {
        Self {
            input,
            keys,
            partitions: partitions.max(1),
            receivers: Mutex::new(None),
            back_pressure: Arc::new(BackPressure::default()),
        }
    }

    fn start(&self, ctx: &Arc<TaskContext>) -> Result<()> {
        let mut guard = self
            .receivers
            .lock()
            .map_err(|_| SluiceError::exec("exchange lock poisoned"))?;
        if guard.is_some() {
            return Ok(());
        }
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..self.partitions)
            .map(|_| sync_channel::<Message>(ctx.config.exchange_capacity.max(1)))
            .unzip();
        let schema = self.input.schema();
        let key_fields = self
            .keys
            .iter()
            .map(|k| Ok(SortField::new(k.data_type(&schema)?)))
            .collect::<Result<Vec<_>>>()?;
        for p in 0..self.input.output_partitions() {
            let producer = Producer {
                index: p,
                txs: txs.clone(),
                keys: self.keys.clone(),
                converter: RowConverter::new(key_fields.clone())?,
                back_pressure: self.back_pressure.clone(),
            };
            let input = self.input.clone();
            let ctx = ctx.clone();
            let threads = ctx.threads.clone();
            threads.spawn(format!("sluice-stream-{p}"), move || {
                producer.run(input, ctx)
            })?;
        }
        *guard = Some(rxs.into_iter().map(Some).collect());
        Ok(())
    }
}

struct Producer {
    index: usize,
    txs: Vec<SyncSender<Message>>,
    keys: Vec<PhysExpr>,
    converter: RowConverter,
    back_pressure: Arc<BackPressure>,
}

impl Producer {
    fn run(self, input: Arc<dyn ExecNode>, ctx: Arc<TaskContext>) {
        // Running time is added as it passes, so a running job's ratio is current.
        let mut mark = Instant::now();
        let mut account = || {
            let now = Instant::now();
            let ns = now.duration_since(mark).as_nanos() as u64;
            mark = now;
            self.back_pressure
                .running_ns
                .fetch_add(ns, Ordering::Relaxed);
        };
        let result = (|| -> Result<bool> {
            for e in input.execute(self.index, &ctx)? {
                let alive = match e? {
                    Element::Batch(b) => self.route(&b)?,
                    Element::End => break,
                    other => self.broadcast(&other),
                };
                account();
                if !alive {
                    return Ok(false);
                }
            }
            Ok(self.broadcast(&Element::End))
        })();
        if let Err(e) = result {
            let msg = e.to_string();
            for tx in &self.txs {
                let _ = tx.send((self.index, Err(SluiceError::exec(msg.clone()))));
            }
        }
        account();
    }

    /// Sends to consumer `c`, timing any wait; false when the consumer is gone.
    fn send(&self, c: usize, e: Element) -> bool {
        match self.txs[c].try_send((self.index, Ok(e))) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            Err(TrySendError::Full(m)) => {
                let t = Instant::now();
                let ok = self.txs[c].send(m).is_ok();
                let ns = t.elapsed().as_nanos() as u64;
                self.back_pressure
                    .blocked_ns
                    .fetch_add(ns, Ordering::Relaxed);
                ok
            }
        }
    }

    /// Control elements go to every consumer; false when all consumers are gone.
    fn broadcast(&self, e: &Element) -> bool {
        let mut any = false;
        for c in 0..self.txs.len() {
            any |= self.send(c, e.clone());
        }
        any
    }

    fn route(&self, batch: &RecordBatch) -> Result<bool> {
        if batch.num_rows() == 0 {
            return Ok(true);
        }
        let n = self.txs.len();
        if n == 1 {
            return Ok(self.send(0, Element::Batch(batch.clone())));
        }
        let targets = key_targets(&self.converter, &self.keys, batch, n)?;
        let mut alive = false;
        for (c, part) in split_rows(batch, &targets, n, |t| t as usize)? {
            alive |= self.send(c, Element::Batch(part));
        }
        Ok(alive)
    }
}

/// The consumer index of every row: the operator owning the key group of its encoded keys.
pub fn key_targets(
    converter: &RowConverter,
    keys: &[PhysExpr],
    batch: &RecordBatch,
    n: usize,
) -> Result<Vec<u64>> {
    let target = |key: &[u8]| -> Result<u64> {
        let kg = key_group_for_key(key, MAX_PARALLELISM)?;
        Ok(u64::from(operator_for_key_group(
            MAX_PARALLELISM,
            n as u32,
            kg,
        )?))
    };
    if keys.is_empty() {
        return Ok(vec![target(&[])?; batch.num_rows()]);
    }
    let cols = keys
        .iter()
        .map(|k| k.evaluate_array(batch))
        .collect::<Result<Vec<_>>>()?;
    let rows = converter.convert_columns(&cols)?;
    rows.iter().map(|r| target(r.as_ref())).collect()
}

impl ExecNode for StreamExchangeExec {
    fn name(&self) -> &'static str {
        "StreamExchangeExec"
    }
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.partitions
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        self.start(ctx)?;
        let rx = self
            .receivers
            .lock()
            .map_err(|_| SluiceError::exec("exchange lock poisoned"))?
            .as_mut()
            .and_then(|v| v.get_mut(partition).and_then(Option::take))
            .ok_or_else(|| SluiceError::exec("stream exchange partition already taken"))?;
        let producers = self.input.output_partitions();
        Ok(Box::new(Aligner::new(rx, producers)))
    }
    fn metrics(&self) -> String {
        format!(
            "back_pressure={} ({:.1}% of producer time blocked)",
            self.back_pressure.level(),
            self.back_pressure.ratio() * 100.0
        )
    }
    fn details(&self) -> String {
        let k: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        format!("key_groups([{}], {})", k.join(", "), self.partitions)
    }
}

/// A consumer: data as it arrives, the minimum watermark over the producers that are not
/// idle (see [`Aligner::aligned`]), `End` after all.
struct Aligner {
    rx: Receiver<Message>,
    watermarks: Vec<i64>,
    idle: Vec<bool>,
    ended: usize,
    emitted: i64,
    done: bool,
}

impl Aligner {
    /// Aligns what `producers` producers send on `rx`.
    fn new(rx: Receiver<Message>, producers: usize) -> Self {
        Self {
            rx,
            watermarks: vec![i64::MIN; producers],
            idle: vec![false; producers],
            ended: 0,
            emitted: i64::MIN,
            done: false,
        }
    }

    /// The aligned watermark: the minimum over active producers; when every producer is
    /// idle, the maximum over all (as Flink's watermark valve does: what each said last
    /// still holds, and nothing older is coming).
    fn aligned(&self) -> Option<i64> {
        let active = self.watermarks.iter().zip(&self.idle).filter(|(_, i)| !**i);
        active
            .map(|(w, _)| *w)
            .min()
            .or_else(|| self.watermarks.iter().copied().max())
    }
}

impl Iterator for Aligner {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Ok((p, msg)) = self.rx.recv() else {
                self.done = true;
                return Some(Err(SluiceError::exec(
                    "a stream task stopped without finishing",
                )));
            };
            let wm = match msg {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(Element::Batch(b)) => {
                    self.idle[p] = false;
                    return Some(Ok(Element::Batch(b)));
                }
                Ok(Element::Barrier(id)) => return Some(Ok(Element::Barrier(id))),
                Ok(Element::Idle) => {
                    self.idle[p] = true;
                    self.watermarks[p]
                }
                Ok(Element::Watermark(w)) => {
                    self.idle[p] = false;
                    w
                }
                Ok(Element::End) => {
                    self.ended += 1;
                    self.idle[p] = false;
                    i64::MAX
                }
            };
            self.watermarks[p] = self.watermarks[p].max(wm);
            if self.ended == self.watermarks.len() {
                self.done = true;
                return Some(Ok(Element::End));
            }
            match self.aligned() {
                Some(min) if min > self.emitted => {
                    self.emitted = min;
                    return Some(Ok(Element::Watermark(min)));
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watermarks(sent: Vec<(usize, Element)>) -> Vec<i64> {
        let (tx, rx) = sync_channel(sent.len() + 1);
        for (p, e) in sent {
            tx.send((p, Ok(e))).expect("send");
        }
        drop(tx);
        Aligner::new(rx, 2)
            .map_while(|e| e.ok())
            .filter_map(|e| match e {
                Element::Watermark(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_idle_producer_does_not_hold_the_watermark_back() {
        use Element::*;
        // Producer 1 is silent: no watermark passes producer 0's alone.
        assert_eq!(
            watermarks(vec![(0, Watermark(10)), (0, Watermark(20))]),
            Vec::<i64>::new()
        );
        // Once it says it is idle, producer 0's watermarks pass; when it sends again, it
        // counts again.
        assert_eq!(
            watermarks(vec![
                (0, Watermark(10)),
                (1, Idle),
                (0, Watermark(20)),
                (1, Watermark(15)),
                (0, Watermark(30)),
                (1, Watermark(40)),
            ]),
            vec![10, 20, 30]
        );
        // All idle: the latest watermark any producer sent holds.
        assert_eq!(watermarks(vec![(0, Idle), (1, Idle)]), Vec::<i64>::new());
        assert_eq!(
            watermarks(vec![
                (0, Watermark(30)),
                (0, Idle),
                (1, Watermark(5)),
                (1, Idle)
            ]),
            vec![5, 30]
        );
    }
}
