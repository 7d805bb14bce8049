//! Prints revenue per customer, computed with the DataFrame API over in-memory tables.
fn main() -> sluice::Result<()> {
    println!("{}", sluice_examples::dataframe_example()?);
    Ok(())
}
