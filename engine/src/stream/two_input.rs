//! Operators with two inputs (stream joins): each input is drained by its own thread into
//! one bounded channel, so the operator sees both sides' elements in arrival order and a
//! slow operator holds both inputs back. Watermarks are aligned: the operator's event time
//! is the minimum of the two sides' (an ended side counts as the end of time, an idle one
//! is left out until it sends again), and it is forwarded only when it advances. The output ends once both inputs have ended.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver};

use arrow::array::RecordBatch;

use crate::error::{Result, SluiceError};
use crate::physical::{Element, ElementStream};

/// Which input an element came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first input (a join's left side).
    Left,
    /// The second input.
    Right,
}

impl Side {
    /// The other input.
    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }
}

/// A streaming operator over two inputs.
pub trait TwoInputOperator: Send {
    /// Handles one batch from `side`, pushing any output to `out`.
    fn process_batch(
        &mut self,
        side: Side,
        batch: RecordBatch,
        out: &mut Vec<Element>,
    ) -> Result<()>;
    /// The aligned event time advanced to `ts`. Default: forward it.
    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        out.push(Element::Watermark(ts));
        Ok(())
    }
}

type Message = (Side, Result<Element>);

/// Runs `op` over `left` and `right`, buffering at most `capacity` input elements.
pub fn two_input_stream(
    left: ElementStream,
    right: ElementStream,
    capacity: usize,
    op: impl TwoInputOperator + 'static,
) -> Result<ElementStream> {
    let (tx, rx) = sync_channel::<Message>(capacity.max(1));
    for (side, input) in [(Side::Left, left), (Side::Right, right)] {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("sluice-{side:?}-input").to_lowercase())
            .spawn(move || {
                for el in input {
                    // A closed channel means the consumer is gone: stop reading.
                    if tx.send((side, el)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| SluiceError::exec(format!("cannot start a join input thread: {e}")))?;
    }
    Ok(Box::new(TwoInputStream {
        rx,
        op,
        out: Vec::new(),
        buf: VecDeque::new(),
        watermarks: [i64::MIN; 2],
        idle: [false; 2],
        ended: [false; 2],
        emitted: i64::MIN,
        done: false,
    }))
}

struct TwoInputStream<O> {
    rx: Receiver<Message>,
    op: O,
    out: Vec<Element>,
    buf: VecDeque<Element>,
    watermarks: [i64; 2],
    idle: [bool; 2],
    ended: [bool; 2],
    /// The last watermark forwarded.
    emitted: i64,
    done: bool,
}

impl<O: TwoInputOperator> TwoInputStream<O> {
    /// Takes one input element.
    fn step(&mut self) -> Result<()> {
        let Ok((side, el)) = self.rx.recv() else {
            // Both input threads are gone without an end: an input failed to start.
            return Err(SluiceError::exec("a join input stopped without ending"));
        };
        let i = side.index();
        match el? {
            Element::Batch(b) => {
                self.idle[i] = false;
                self.op.process_batch(side, b, &mut self.out)?
            }
            Element::Watermark(ts) => {
                self.idle[i] = false;
                self.watermarks[i] = self.watermarks[i].max(ts);
                self.align()?;
            }
            // Checkpoints are not implemented: there is nothing to align barriers for.
            Element::Barrier(_) => {}
            Element::Idle => {
                self.idle[i] = true;
                self.align()?;
            }
            Element::End => {
                self.ended[i] = true;
                self.watermarks[i] = i64::MAX;
                if self.ended.iter().all(|e| *e) {
                    self.out.push(Element::End);
                    self.done = true;
                } else {
                    self.align()?;
                }
            }
        }
        self.buf.extend(self.out.drain(..));
        Ok(())
    }

    /// Forwards the minimum of the two sides' watermarks (an idle side's left out) when it
    /// advanced.
    fn align(&mut self) -> Result<()> {
        // As the exchange aligns: when both sides are idle, the later watermark holds.
        let active = (0..2).filter(|&i| !self.idle[i] || self.ended[i]);
        let wm = active
            .map(|i| self.watermarks[i])
            .min()
            .unwrap_or(self.watermarks[0].max(self.watermarks[1]));
        if wm > self.emitted {
            self.emitted = wm;
            self.op.on_watermark(wm, &mut self.out)?;
        }
        Ok(())
    }
}

impl<O: TwoInputOperator> Iterator for TwoInputStream<O> {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.buf.pop_front() {
                return Some(Ok(e));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                self.buf.clear();
                return Some(Err(e));
            }
        }
    }
}
