//! Range-checked parsers for numeric options: a value out of range is refused by the
//! argument parser with a one-line error naming the option, before anything runs.

/// An integer of at least 1.
pub fn count(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// Augmented copies of each example `retrain` fits on: 1 to 1000 (each is a clip to
/// augment and run through the network; a billion filled the memory).
pub fn copies(s: &str) -> Result<usize, String> {
    at_most(count(s)?, 1000, "")
}

/// Synthetic clips per word and engine: 1 to 100 (they are held in memory; the engines
/// have fewer voices than that, so more only repeats them with other prosody).
pub fn tts_variants(s: &str) -> Result<usize, String> {
    at_most(count(s)?, 100, "")
}

/// Rounds of hard-negative mining: 1 to 20 (each mines a new stream and keeps what it
/// found, so the windows held grow with every round).
pub fn mining_rounds(s: &str) -> Result<usize, String> {
    at_most(count(s)?, 20, "")
}

/// `v` when it is at most `max`, else a refusal that gives both (in `unit`).
fn at_most<T: PartialOrd + std::fmt::Display>(v: T, max: T, unit: &str) -> Result<T, String> {
    match v <= max {
        true => Ok(v),
        false => Err(format!("{v}{unit}: at most {max}")),
    }
}

/// A whole number within `range`; the refusal names the range in words.
pub fn whole_within(s: &str, range: &std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    s.parse().ok().filter(|b| range.contains(b)).ok_or_else(|| {
        format!(
            "`{s}` is not a whole number from {} to {}",
            range.start(),
            range.end()
        )
    })
}

/// A finite number above 0.
pub fn positive(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if v <= 0.0 {
        return Err(format!("{v} must be above 0"));
    }
    Ok(v)
}

/// A finite number of at least 0.
pub fn non_negative(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if v < 0.0 {
        return Err(format!("{v} must not be negative"));
    }
    Ok(v)
}

/// A probability in [0, 1].
pub fn probability(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is outside 0..1"));
    }
    Ok(v)
}

/// A vocal-tract-length warp range: factors 1 ± this, so within [0, 0.3] (beyond, formants
/// leave any human range).
pub fn vtlp(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if !(0.0..=0.3).contains(&v) {
        return Err(format!("{v} is outside 0..0.3"));
    }
    Ok(v)
}

/// A share in [0, 1) (a dropout probability: 1 would drop everything).
pub fn below_one(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if !(0.0..1.0).contains(&v) {
        return Err(format!("{v} must be at least 0 and below 1"));
    }
    Ok(v)
}

/// A learning rate: finite, above 0, at most 10.
pub fn learning_rate(s: &str) -> Result<f64, String> {
    let v = f64::from(positive(s)?);
    if v > 10.0 {
        return Err(format!("{v} is not a learning rate (above 10)"));
    }
    Ok(v)
}

/// A duration in seconds: finite, above 0, at most a year.
pub fn seconds(s: &str) -> Result<f64, String> {
    let v = f64::from(positive(s)?);
    if v > 3.2e7 {
        return Err(format!("{v} s is more than a year"));
    }
    Ok(v)
}

/// Minutes of a built stream: above 0, at most two hours (each stream is held in memory:
/// ~460 MB of samples at two hours).
pub fn stream_minutes(s: &str) -> Result<f32, String> {
    at_most(positive(s)?, 120.0, " minutes")
}

/// How long a word must stay above its threshold (seconds): 0 to 5 (a word lasts about
/// one).
pub fn sustain_seconds(s: &str) -> Result<f32, String> {
    at_most(non_negative(s)?, 5.0, " s")
}

/// A smoothing window (seconds): above 0, at most 10 (the window's scores are held in
/// memory, and one much longer than a word only averages it away).
pub fn window_seconds(s: &str) -> Result<f32, String> {
    at_most(positive(s)?, 10.0, " s")
}

/// A quiet time after an event (seconds): 0 to one hour.
pub fn refractory_seconds(s: &str) -> Result<f32, String> {
    at_most(non_negative(s)?, 3600.0, " s")
}

/// As `stream_minutes`, or 0 for none.
pub fn stream_minutes_or_none(s: &str) -> Result<f32, String> {
    match non_negative(s)? {
        0.0 => Ok(0.0),
        _ => stream_minutes(s),
    }
}

fn finite(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() {
        return Err(format!("'{s}' is not a finite number"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(count("0").is_err() && count("-1").is_err() && count("x").is_err());
        assert_eq!(count("3"), Ok(3));
        assert!(positive("0").is_err() && positive("nan").is_err() && positive("inf").is_err());
        assert!(probability("1.01").is_err() && probability("-0.1").is_err());
        assert_eq!(probability("1"), Ok(1.0));
        assert!(below_one("1").is_err() && below_one("0").is_ok());
        assert!(non_negative("-1e-9").is_err() && non_negative("0").is_ok());
        assert!(learning_rate("0").is_err() && learning_rate("11").is_err());
        assert!(seconds("0").is_err() && seconds("1e9").is_err() && seconds("2.5").is_ok());
        assert!(stream_minutes("1e9").is_err() && stream_minutes("0").is_err());
        assert_eq!(stream_minutes("30"), Ok(30.0));
        assert!(window_seconds("0").is_err() && window_seconds("1e9").is_err());
        assert!(refractory_seconds("1e30").is_err() && refractory_seconds("-1").is_err());
        assert_eq!(refractory_seconds("0"), Ok(0.0));
        assert!(copies("1001").is_err() && copies("0").is_err() && copies("1000").is_ok());
        assert!(tts_variants("101").is_err() && tts_variants("100").is_ok());
        assert!(mining_rounds("21").is_err() && mining_rounds("3").is_ok());
    }
}
