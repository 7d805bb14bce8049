-- q0, pass through: every bid, unchanged (measures the source and the framework).
SELECT auction, bidder, price, dateTime, extra FROM bid
