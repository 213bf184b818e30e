//! Release strategies as written (direct, canary steps, blue-green), converted for the
//! [`Loader`](super::Loader).

use super::*;

impl Loader<'_> {
    pub(super) fn strategy(&self, field: &str, raw: &Spanned<RawStrategy>) -> Result<Strategy> {
        let map = match &raw.value {
            RawStrategy::Name(n) => {
                return match n.as_str() {
                    "direct" => Ok(Strategy::Direct),
                    "blue_green" => Ok(Strategy::BlueGreen { auto_switch: false }),
                    "canary" => Err(self.err(
                        Some(&raw.referenced),
                        format!(
                            "{field}: canary needs steps, e.g. {{ canary: {{ steps: [{{ weight: 10, pause: 1h }}, {{ weight: 100 }}] }} }}"
                        ),
                    )),
                    other => Err(self.err(
                        Some(&raw.referenced),
                        format!(
                            "{field}: unknown strategy {other:?}: expected direct, canary or blue_green"
                        ),
                    )),
                };
            }
            RawStrategy::Map(m) => m,
        };
        let given = [
            map.direct.is_some(),
            map.canary.is_some(),
            map.blue_green.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            return Err(self.err(
                Some(&raw.referenced),
                format!(
                    "{field}: name exactly one strategy (direct, canary or blue_green), found {given}"
                ),
            ));
        }
        if let Some(bg) = &map.blue_green {
            return Ok(Strategy::BlueGreen {
                auto_switch: bg.value.auto_switch,
            });
        }
        let Some(canary) = &map.canary else {
            return Ok(Strategy::Direct);
        };
        let raw_steps = &canary.value.steps;
        if raw_steps.value.is_empty() {
            return Err(self.at(
                raw_steps,
                format!(
                    "{field}.canary.steps: at least one step is needed, the last at weight 100"
                ),
            ));
        }
        let mut steps = Vec::new();
        let last = raw_steps.value.len() - 1;
        for (i, step) in raw_steps.value.iter().enumerate() {
            let at = format!("{field}.canary.steps[{i}]");
            let w = step.value.weight.value;
            if !(1..=100).contains(&w) {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: {w} is not a percentage from 1 to 100"),
                ));
            }
            let weight = w as u8;
            if let Some(prev) = steps.last().map(|s: &CanaryStep| s.weight)
                && weight <= prev
            {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: {weight} must be more than the step before ({prev})"),
                ));
            }
            if i == last && weight != 100 {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: the last step must be at 100, not {weight}"),
                ));
            }
            if weight == 100 && i != last {
                return Err(self.at(
                    &step.value.weight,
                    format!("{at}.weight: 100 must be the last step"),
                ));
            }
            let pause = match &step.value.pause {
                Some(p) if weight == 100 => {
                    return Err(self.at(
                        p,
                        format!(
                            "{at}.pause: the last step (100) ends the canary and takes no pause"
                        ),
                    ));
                }
                Some(p) => Some(self.duration(&format!("{at}.pause"), p)?),
                None => None,
            };
            steps.push(CanaryStep { weight, pause });
        }
        Ok(Strategy::Canary { steps })
    }
}
