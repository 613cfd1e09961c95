//! Amount and currency parsing never panics, and whatever it accepts is exact: non-negative
//! minor units that print and parse back to the same amount.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surclass_core::money::{Currency, Money};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // "<currency>|<amount>", or the whole input as an amount in a few fixed currencies.
    let (currency, amount) = match text.split_once('|') {
        Some((c, a)) => match Currency::parse(c) {
            Ok(currency) => {
                assert_eq!(currency.code().len(), 3, "{c:?}");
                assert!(currency.code().chars().all(|ch| ch.is_ascii_uppercase()));
                (currency, a)
            }
            Err(_) => return,
        },
        None => (Currency::parse(["EUR", "JPY", "BHD"][data.len() % 3]).unwrap(), text),
    };
    if let Ok(money) = Money::parse(amount, currency) {
        assert!(money.minor() >= 0, "{amount:?} parsed negative");
        let printed = money.to_string();
        let again = Money::parse(&printed, currency).expect("what we print parses");
        assert_eq!(again.minor(), money.minor(), "{amount:?} -> {printed:?}");
        let decimals = printed.split_once('.').map_or(0, |(_, d)| d.len());
        assert_eq!(decimals as u32, currency.exponent(), "{printed:?} in {currency}");
        assert_eq!(
            Money::from_minor(money.minor(), currency).unwrap().to_string(),
            printed
        );
    }
});
