//! Prints revenue per customer, computed with SQL over in-memory tables.
fn main() -> sluice::Result<()> {
    println!("{}", sluice_examples::sql_example()?);
    Ok(())
}
