//! Streaming benchmark: a `datagen` source of N rows (auction 1..10 000, random price,
//! event time advancing 1 ms every 10 rows), a 10-second TUMBLE window
//! `GROUP BY auction` with `COUNT(*), SUM(price), MAX(price)`, into a `blackhole` sink,
//! run as a stream. Prints events per second.
//!
//! ```sh
//! cargo run --release -p sluice --example stream_window -- [ROWS] [PARALLELISM]
//! ```

use std::time::Instant;

use sluice::{Session, SessionConfig};

fn main() -> sluice::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args
        .next()
        .map_or(Ok(50_000_000), |a| a.parse())
        .map_err(|e| sluice::SluiceError::plan(format!("ROWS: {e}")))?;
    let parallelism: usize = args
        .next()
        .map_or(Ok(2), |a| a.parse())
        .map_err(|e| sluice::SluiceError::plan(format!("PARALLELISM: {e}")))?;
    let session =
        Session::with_config(SessionConfig::default().with_target_partitions(parallelism));
    session.sql("SET 'execution.runtime-mode' = 'streaming'")?;
    session.sql(&format!(
        "CREATE TABLE bids (
            id BIGINT, auction BIGINT, price BIGINT,
            ts AS TO_TIMESTAMP_LTZ(id / 10, 3),
            WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
         ) WITH (
            'connector' = 'datagen', 'seed' = '1',
            'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{}',
            'fields.auction.min' = '1', 'fields.auction.max' = '10000',
            'fields.price.min' = '1', 'fields.price.max' = '100000'
         )",
        rows - 1
    ))?;
    session.sql(
        "CREATE TABLE sink (window_start TIMESTAMP, window_end TIMESTAMP, auction BIGINT,
            n BIGINT, total BIGINT, hi BIGINT) WITH ('connector' = 'blackhole')",
    )?;
    let started = Instant::now();
    let out = session
        .sql(
            "INSERT INTO sink
             SELECT window_start, window_end, auction, COUNT(*), SUM(price), MAX(price)
             FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
             GROUP BY window_start, window_end, auction",
        )?
        .collect()?;
    let secs = started.elapsed().as_secs_f64();
    let written = arrow::util::pretty::pretty_format_batches(&out)?;
    println!("{written}");
    println!(
        "{rows} events in {secs:.2} s at parallelism {parallelism}: {:.2} M events/s",
        rows as f64 / secs / 1e6
    );
    Ok(())
}
