//! Time as the core sees it: monotonic microseconds handed in by the driver.
//!
//! As in smoltcp's `time` module, the core owns its `Instant` and never reads
//! a clock. Drivers on std can use [`MonotonicClock`] (feature `std`) to turn
//! `std::time::Instant` into ours; the simulator counts virtual time directly.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A point in time, in microseconds since an arbitrary epoch chosen by the
/// driver. Only differences between instants mean anything.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Instant {
    micros: u64,
}

/// A span of time in microseconds.
///
/// In human-readable formats (TOML, JSON) a duration is a string with a
/// unit, `"10s"`, `"500ms"`, `"250us"`, `"5m"` or `"1h"`; in binary formats
/// it is its microseconds.
///
/// ```
/// use epidemic_core::Duration;
///
/// let d: Duration = serde_json::from_str("\"1500ms\"").unwrap();
/// assert_eq!(d, Duration::from_millis(1500));
/// assert_eq!(serde_json::to_string(&Duration::from_secs(10)).unwrap(), "\"10s\"");
/// assert!(serde_json::from_str::<Duration>("\"10\"").is_err(), "a unit is required");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    micros: u64,
}

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant { micros: 0 };
    /// The latest representable instant; useful as "never".
    pub const MAX: Instant = Instant { micros: u64::MAX };

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Instant { micros }
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Milliseconds since the epoch, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros),
        }
    }

    /// `self + d`, or `None` on overflow.
    pub const fn checked_add(self, d: Duration) -> Option<Instant> {
        match self.micros.checked_add(d.micros) {
            Some(micros) => Some(Instant { micros }),
            None => None,
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { micros: 0 };
    /// The longest representable span.
    pub const MAX: Duration = Duration { micros: u64::MAX };

    /// A span of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Duration { micros }
    }

    /// A span of `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Duration {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// A span of `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// The span in microseconds.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// The span in milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// `self * n`, saturating.
    pub const fn saturating_mul(self, n: u64) -> Duration {
        Duration {
            micros: self.micros.saturating_mul(n),
        }
    }
}

/// Saturates at [`Instant::MAX`]: a deadline that far away means "never".
impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(d.micros),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

/// Saturates at zero, so a driver's clock skew can never panic the core.
impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, other: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_add(other.micros),
        }
    }
}

impl From<core::time::Duration> for Duration {
    fn from(d: core::time::Duration) -> Self {
        Duration {
            micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> Self {
        core::time::Duration::from_micros(d.micros)
    }
}

/// The units a duration is written in, largest first.
const UNITS: [(&str, u64); 5] = [
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("us", 1),
];

impl Duration {
    /// Parses `"<integer><unit>"` with a unit of `h`, `m`, `s`, `ms` or `us`.
    fn parse(text: &str) -> Result<Duration, &'static str> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        if number.is_empty() {
            return Err("a duration is a whole number and a unit, such as 10s or 500ms");
        }
        let scale = UNITS
            .iter()
            .find(|(u, _)| *u == unit.trim())
            .map(|(_, scale)| *scale)
            .ok_or("a duration needs a unit: h, m, s, ms or us (10s, 500ms)")?;
        let n: u64 = number.parse().map_err(|_| "duration too long")?;
        n.checked_mul(scale)
            .map(Duration::from_micros)
            .ok_or("duration too long")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_u64(self.micros);
        }
        // The largest unit that writes it exactly; zero is "0s".
        let (unit, scale) = UNITS
            .iter()
            .find(|(_, scale)| self.micros % scale == 0)
            .copied()
            .unwrap_or(("us", 1));
        let (unit, scale) = if self.micros == 0 { ("s", 1) } else { (unit, scale) };
        serializer.collect_str(&format_args!("{}{unit}", self.micros / scale))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"10s\", \"500ms\" or \"250us\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_micros(v))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_u64(Visitor)
        }
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.micros / 1_000_000, self.micros % 1_000_000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.micros % 1_000 == 0 {
            write!(f, "{}ms", self.micros / 1_000)
        } else {
            write!(f, "{}us", self.micros)
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Reads `std::time::Instant` and expresses it as microseconds since the
/// clock was created. A convenience for drivers; the core never calls it.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: std::time::Instant,
}

#[cfg(feature = "std")]
impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        MonotonicClock {
            start: std::time::Instant::now(),
        }
    }

    /// The current instant on this clock.
    pub fn now(&self) -> Instant {
        let micros = self.start.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// How long from now until `deadline`, zero if it has passed.
    pub fn until(&self, deadline: Instant) -> core::time::Duration {
        (deadline - self.now()).into()
    }
}

#[cfg(feature = "std")]
impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(3), Instant::from_micros(8_000));
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::from_millis(1) - Instant::from_millis(2), Duration::ZERO);
        assert_eq!(Instant::from_millis(7) - t, Duration::from_millis(2));
        assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
    }

    #[test]
    fn converts_to_and_from_core_duration() {
        let d: Duration = core::time::Duration::from_millis(1500).into();
        assert_eq!(d, Duration::from_millis(1500));
        let back: core::time::Duration = d.into();
        assert_eq!(back.as_millis(), 1500);
        let huge: Duration = core::time::Duration::MAX.into();
        assert_eq!(huge, Duration::MAX);
    }

    #[test]
    fn debug_is_readable() {
        assert_eq!(alloc::format!("{:?}", Instant::from_micros(1_500_000)), "1.500000s");
        assert_eq!(alloc::format!("{:?}", Duration::from_millis(200)), "200ms");
        assert_eq!(alloc::format!("{:?}", Duration::from_micros(7)), "7us");
    }
}

#[cfg(test)]
mod serde_tests {
    use super::Duration;
    use alloc::string::{String, ToString};

    fn json(d: Duration) -> String {
        serde_json::to_string(&d).unwrap()
    }

    #[test]
    fn durations_are_written_in_their_largest_exact_unit_and_read_back() {
        let cases = [
            (Duration::ZERO, "\"0s\""),
            (Duration::from_micros(250), "\"250us\""),
            (Duration::from_millis(1500), "\"1500ms\""),
            (Duration::from_secs(10), "\"10s\""),
            (Duration::from_secs(300), "\"5m\""),
            (Duration::from_secs(7200), "\"2h\""),
            (Duration::MAX, "\"18446744073709551615us\""),
        ];
        for (d, text) in cases {
            assert_eq!(json(d), text);
            assert_eq!(serde_json::from_str::<Duration>(text).unwrap(), d);
        }
        // Spaces around and between are allowed; any unit is read.
        assert_eq!(
            serde_json::from_str::<Duration>("\" 3 m \"").unwrap(),
            Duration::from_secs(180)
        );
        assert_eq!(
            serde_json::from_str::<Duration>("\"90s\"").unwrap(),
            Duration::from_secs(90)
        );
    }

    #[test]
    fn a_duration_without_a_unit_or_too_long_is_refused() {
        for bad in [
            "\"10\"",
            "\"s\"",
            "\"10 days\"",
            "\"-1s\"",
            "\"1.5s\"",
            "\"99999999999999h\"",
        ] {
            let e = serde_json::from_str::<Duration>(bad).unwrap_err().to_string();
            assert!(e.contains("duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn binary_formats_carry_microseconds() {
        let d = Duration::from_millis(1234);
        let bytes = postcard::to_allocvec(&d).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&1_234_000u64).unwrap());
        assert_eq!(postcard::from_bytes::<Duration>(&bytes).unwrap(), d);
    }
}
