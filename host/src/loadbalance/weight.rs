//! The weight every weighted strategy uses, as Dubbo's `AbstractLoadBalance` computes it: the
//! per-method `weight` parameter (default 100), scaled down while a provider warms up, so a
//! freshly started JVM is not flooded before its JIT and caches are ready.

use std::time::{SystemTime, UNIX_EPOCH};

use super::param;
use crate::url::Url;

/// Weight of a provider whose URL has no `weight` parameter.
pub const DEFAULT_WEIGHT: i64 = 100;
/// Warmup length in milliseconds when the URL has no `warmup` parameter (10 minutes).
pub const DEFAULT_WARMUP_MS: i64 = 600_000;

/// The effective weight of the provider at `url` for `method` at wall-clock time `now_ms`
/// (milliseconds since the epoch): 0 for a non-positive configured weight, 1 when the provider's
/// `timestamp` lies in the future, the warmup-scaled weight while younger than `warmup`.
pub fn weight(url: &Url, method: &str, now_ms: i64) -> u32 {
    WeightParams::parse(url, method).at(now_ms)
}

/// A provider's weight parameters for one method, parsed once so that computing the weight on
/// every call is arithmetic rather than URL lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightParams {
    weight: i32,
    timestamp: i64,
    warmup: i32,
}

impl WeightParams {
    /// Reads `method.weight` (else `weight`), `timestamp` and `warmup` from `url`.
    pub fn parse(url: &Url, method: &str) -> Self {
        WeightParams {
            weight: java_int(param::method_param_i64(
                url,
                method,
                "weight",
                DEFAULT_WEIGHT,
            )),
            timestamp: url.param_i64("timestamp", 0),
            warmup: java_int(url.param_i64("warmup", DEFAULT_WARMUP_MS)),
        }
    }

    /// The effective weight at `now_ms`, as [`weight`] describes.
    pub fn at(&self, now_ms: i64) -> u32 {
        if self.weight <= 0 {
            return 0;
        }
        if self.timestamp <= 0 {
            return self.weight.unsigned_abs();
        }
        let uptime = now_ms.saturating_sub(self.timestamp);
        if uptime < 0 {
            // Clocks disagree; Dubbo trusts the provider least rather than guessing.
            return 1;
        }
        if uptime > 0 && uptime < i64::from(self.warmup) {
            // uptime < warmup <= i32::MAX, so the narrowing is lossless.
            warmup_weight(uptime as i32, self.warmup, self.weight)
        } else {
            self.weight.unsigned_abs()
        }
    }
}

/// Dubbo's `calculateWarmupWeight`: `(int) (uptime / ((float) warmup / weight))` clamped to
/// `[1, weight]`, computed in `f32` like Java so both pick the same integer at the boundaries.
pub fn warmup_weight(uptime_ms: i32, warmup_ms: i32, weight: i32) -> u32 {
    // `as i32` saturates (and maps NaN to 0) exactly as Java's float-to-int cast does.
    let scaled = (uptime_ms as f32 / (warmup_ms as f32 / weight as f32)) as i32;
    scaled.clamp(1, weight.max(1)).unsigned_abs()
}

/// Wall-clock milliseconds since the epoch, the unit of the provider's `timestamp` parameter.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Java reads these parameters as `int`; out-of-range values saturate instead of failing.
fn java_int(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(query: &str) -> Url {
        Url::parse(&format!("dubbo://10.0.0.1:20880/S?{query}")).expect("valid url")
    }

    #[test]
    fn warmup_scales_a_young_providers_weight() {
        let now = 1_700_000_000_000;
        let young = url(&format!("timestamp={}", now - 60_000));
        assert_eq!(weight(&young, "m", now), 10);
        assert_eq!(warmup_weight(60_000, 600_000, 100), 10);
        // A provider just started still gets a chance; one past warmup gets its full weight.
        assert_eq!(warmup_weight(1, 600_000, 100), 1);
        let old = url(&format!("timestamp={}", now - 700_000));
        assert_eq!(weight(&old, "m", now), 100);
        let custom = url(&format!(
            "timestamp={}&warmup=120000&weight=50",
            now - 60_000
        ));
        assert_eq!(weight(&custom, "m", now), 25);
    }

    #[test]
    fn a_future_timestamp_gives_weight_one_and_zero_weight_stays_zero() {
        let now = 1_700_000_000_000;
        assert_eq!(weight(&url(&format!("timestamp={}", now + 5)), "m", now), 1);
        assert_eq!(weight(&url("weight=0"), "m", now), 0);
        assert_eq!(weight(&url("weight=-3"), "m", now), 0);
        assert_eq!(weight(&url("weight=7&m.weight=9"), "m", now), 9);
        assert_eq!(weight(&url("weight=junk"), "m", now), 100);
    }
}
