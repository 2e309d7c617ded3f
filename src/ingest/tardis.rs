//! Tardis CSV exports: trades and best bid/ask quotes.
//!
//! Consumes `exchange,symbol,timestamp,local_timestamp,…` files whose times are µs since the
//! epoch. Produces trades (venue = exchange, side = the aggressor) and quotes, both stamped with
//! the exchange `timestamp`; `local_timestamp` (when Tardis received the message) is ignored.
//! Keeps the last exchange and symbol strings so a run of equal values is not re-validated.
//!
//! Refused rows: wrong column count, unparsable numbers, a non-positive price or trade amount, a
//! negative quote amount, a price or amount above 1e12, an exchange or symbol that is not UTF-8 or
//! holds a control character or quote, a side other than buy/sell/unknown, and a crossed quote
//! (bid above ask).

use std::path::Path;

use csv::{ByteRecord, Trim};

use super::fields::{bounded, name_text, parse_i64, parse_non_negative, parse_positive};
use super::records::{exact, RecordSource};
use super::{open_with_header, shown, Error, Format, RowParser, Rows, SourceEvent};
use crate::events::{QuoteTick, Side, TradeTick};

/// The header of a Tardis trades export, in column order.
pub(super) const TRADES_HEADER: [&str; 8] = [
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "id",
    "side",
    "price",
    "amount",
];

/// The header of a Tardis quotes export, in column order.
pub(super) const QUOTES_HEADER: [&str; 8] = [
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "ask_amount",
    "ask_price",
    "bid_price",
    "bid_amount",
];

/// Opens a Tardis trades export.
pub(super) fn open_trades(path: &Path) -> Result<Rows<TradeParser>, Error> {
    let records = open_checked(path, Format::TardisTrades, &TRADES_HEADER)?;
    Ok(Rows::new(records, TradeParser::default()))
}

/// Opens a Tardis quotes export.
pub(super) fn open_quotes(path: &Path) -> Result<Rows<QuoteParser>, Error> {
    let records = open_checked(path, Format::TardisQuotes, &QUOTES_HEADER)?;
    Ok(Rows::new(records, QuoteParser::default()))
}

/// Returns whether `columns` is exactly `expected`.
pub(super) fn header_is(columns: &[String], expected: &[&str]) -> bool {
    columns.len() == expected.len() && columns.iter().zip(expected).all(|(a, b)| a == b)
}

fn open_checked(path: &Path, format: Format, expected: &[&str]) -> Result<RecordSource, Error> {
    let (records, columns, seen) = open_with_header(path, format, b',', Trim::None)?;
    if header_is(&columns, expected) {
        Ok(records)
    } else {
        Err(Error::Header {
            path: path.to_owned(),
            format,
            seen,
            expected: format.expected_header().to_owned(),
        })
    }
}

/// A string cached by its bytes, so equal consecutive values cost one comparison and one clone.
#[derive(Default)]
struct Cached {
    bytes: Vec<u8>,
    text: String,
}

impl Cached {
    fn get(&mut self, bytes: &[u8], column: &str) -> Result<String, String> {
        if bytes.is_empty() {
            return Err(format!("empty {column}"));
        }
        if self.bytes != bytes {
            self.text = name_text(bytes, column)?.to_owned();
            self.bytes = bytes.to_vec();
        }
        Ok(self.text.clone())
    }
}

/// Parses trade rows.
#[derive(Default)]
pub(super) struct TradeParser {
    venue: Cached,
    symbol: Cached,
}

impl RowParser for TradeParser {
    fn parse(&mut self, record: &ByteRecord, _row: u64) -> Result<SourceEvent, String> {
        let [exchange, symbol, ts, _local, _id, side, price, amount] = exact(record)?;
        let side = match side {
            b"buy" => Side::Buy,
            b"sell" => Side::Sell,
            b"unknown" | b"" => Side::Unknown,
            other => return Err(format!("unknown side `{}`", shown(other))),
        };

        Ok(SourceEvent::Trade(TradeTick {
            ts_us: parse_i64(ts, "timestamp")?,
            price: bounded(parse_positive(price, "price")?, "price")?,
            size: bounded(parse_positive(amount, "amount")?, "amount")?,
            side,
            venue: self.venue.get(exchange, "exchange")?,
            symbol: self.symbol.get(symbol, "symbol")?,
        }))
    }
}

/// Parses quote rows.
#[derive(Default)]
pub(super) struct QuoteParser {
    venue: Cached,
    symbol: Cached,
}

impl RowParser for QuoteParser {
    fn parse(&mut self, record: &ByteRecord, _row: u64) -> Result<SourceEvent, String> {
        let [exchange, symbol, ts, _local, ask_amount, ask_price, bid_price, bid_amount] =
            exact(record)?;
        let ask_price = bounded(parse_positive(ask_price, "ask_price")?, "ask_price")?;
        let bid_price = bounded(parse_positive(bid_price, "bid_price")?, "bid_price")?;
        if bid_price > ask_price {
            return Err(format!(
                "crossed quote: bid {bid_price} above ask {ask_price}"
            ));
        }

        Ok(SourceEvent::Quote(QuoteTick {
            ts_us: parse_i64(ts, "timestamp")?,
            bid_price,
            bid_size: bounded(parse_non_negative(bid_amount, "bid_amount")?, "bid_amount")?,
            ask_price,
            ask_size: bounded(parse_non_negative(ask_amount, "ask_amount")?, "ask_amount")?,
            venue: self.venue.get(exchange, "exchange")?,
            symbol: self.symbol.get(symbol, "symbol")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format, SourceEvent};
    use crate::data::shared_data_file;
    use crate::events::Side;
    use std::io::Write;

    fn collect(path: &std::path::Path, format: Format) -> (Vec<SourceEvent>, usize) {
        let reader = open(path, Some(format)).expect("opens the file");
        let (mut events, mut errors) = (Vec::new(), 0);
        for item in reader {
            match item {
                Ok(event) => events.push(event),
                Err(_) => errors += 1,
            }
        }
        (events, errors)
    }

    #[test]
    fn tardis_trades_file_reads_9999_trades_from_first_to_last() {
        let path = shared_data_file("market/tardis_trades.csv");
        let (events, errors) = collect(&path, Format::TardisTrades);
        assert_eq!((events.len(), errors), (9_999, 0));

        let SourceEvent::Trade(first) = &events[0] else {
            panic!("not a trade: {:?}", events[0]);
        };
        assert_eq!(first.venue, "binance-futures");
        assert_eq!(first.symbol, "BTCUSDT");
        assert_eq!(first.ts_us, 1_582_329_602_111_000);
        assert_eq!(
            (first.price, first.size, first.side),
            (9682.0, 0.132, Side::Buy)
        );

        let SourceEvent::Trade(last) = &events[9_998] else {
            panic!("not a trade");
        };
        assert_eq!(last.ts_us, 1_582_337_147_728_000);
        assert_eq!(
            (last.price, last.size, last.side),
            (9666.84, 0.07, Side::Sell)
        );
    }

    #[test]
    fn tardis_quotes_file_reads_9999_quotes_with_bid_and_ask_in_place() {
        let path = shared_data_file("market/tardis_quotes.csv");
        let (events, errors) = collect(&path, Format::TardisQuotes);
        assert_eq!((events.len(), errors), (9_999, 0));

        let SourceEvent::Quote(first) = &events[0] else {
            panic!("not a quote");
        };
        assert_eq!(first.ts_us, 1_582_329_601_096_000);
        assert_eq!((first.ask_size, first.ask_price), (0.84, 9682.0));
        assert_eq!((first.bid_price, first.bid_size), (9681.92, 0.67));

        let SourceEvent::Quote(last) = &events[9_998] else {
            panic!("not a quote");
        };
        assert_eq!(last.ts_us, 1_582_329_827_061_000);
        assert_eq!((last.ask_price, last.bid_price), (9672.09, 9671.19));
    }

    #[test]
    fn bad_trade_rows_are_refused_with_their_line_and_the_next_row_still_reads() {
        let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
        write!(
            file,
            "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n\
             x,BTC,1000,1001,1,buy,10,1\n\
             x,BTC,2000,2001,2,buy,0,1\n\
             x,BTC,3000,3001,3,buy,10\n\
             x,BTC,4000,4001,4,hold,10,1\n\
             x,BTC,5x00,5001,5,sell,10,1\n\
             x,BTC,6000,6001,6,sell,11,2\n"
        )
        .expect("writes the temp file");

        let items: Vec<_> = open(file.path(), Some(Format::TardisTrades))
            .expect("opens the file")
            .collect();
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert_eq!(errors[0].reason, "non-positive price 0");
        assert_eq!(errors[0].raw, b"x,BTC,2000,2001,2,buy,0,1");
        assert_eq!(errors[1].reason, "expected 8 columns, found 7");
        assert_eq!(errors[2].reason, "unknown side `hold`");
        assert_eq!(errors[3].reason, "unparsable timestamp `5x00`");
        assert_eq!(
            items
                .last()
                .expect("an item")
                .as_ref()
                .expect("the last row reads")
                .ts_us(),
            6000
        );
    }

    #[test]
    fn crossed_quote_is_refused() {
        let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
        write!(
            file,
            "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n\
             x,BTC,1000,1001,1,10,11,1\n"
        )
        .expect("writes the temp file");
        let items: Vec<_> = open(file.path(), Some(Format::TardisQuotes))
            .expect("opens the file")
            .collect();
        let error = items[0].as_ref().expect_err("should fail");
        assert_eq!(
            (error.line, error.reason.as_str()),
            (2, "crossed quote: bid 11 above ask 10")
        );
    }

    #[test]
    fn quotes_file_opened_as_trades_is_refused_for_its_header() {
        let path = shared_data_file("market/tardis_quotes.csv");
        let error = open(&path, Some(Format::TardisTrades))
            .expect_err("should fail")
            .to_string();
        assert!(error.contains("is not tardis-trades: saw header `exchange,symbol,timestamp,local_timestamp,ask_amount"), "{error}");
    }
}
