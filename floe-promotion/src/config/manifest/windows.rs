//! Freeze windows and promotion windows as written, converted for the
//! [`Loader`](super::Loader).

use super::*;

impl Loader<'_> {
    pub(super) fn freeze_window(
        &self,
        field: &str,
        raw: &Spanned<RawFreezeWindow>,
    ) -> Result<FreezeWindow> {
        let w = &raw.value;
        let reason = w.reason.clone().unwrap_or_default();
        match (&w.start, &w.end, &w.days, &w.from, &w.to) {
            (Some(start), Some(end), None, None, None) => {
                let time = |f: &str, v: &Spanned<String>| {
                    DateTime::parse_from_rfc3339(v.value.trim())
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| {
                            self.at(
                                v,
                                format!(
                                    "{field}.{f}: {:?} is not an RFC 3339 time (e.g. 2025-12-24T00:00:00Z): {e}",
                                    v.value
                                ),
                            )
                        })
                };
                let (s, e) = (time("start", start)?, time("end", end)?);
                if e <= s {
                    return Err(self.at(end, format!("{field}.end: must be after start")));
                }
                Ok(FreezeWindow::Absolute {
                    start: s,
                    end: e,
                    reason,
                })
            }
            (None, None, Some(days), Some(from), Some(to)) => {
                if days.is_empty() {
                    return Err(self.at(raw, format!("{field}.days: at least one day is required")));
                }
                let days = days
                    .iter()
                    .map(|d| {
                        weekday(&d.value).ok_or_else(|| {
                            self.at(
                                d,
                                format!(
                                    "{field}.days: {:?} is not a day (expected mon, tue, wed, thu, fri, sat or sun)",
                                    d.value
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let time = |f: &str, v: &Spanned<String>| {
                    let t = v.value.trim();
                    NaiveTime::parse_from_str(t, "%H:%M")
                        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
                        .map_err(|_| {
                            self.at(
                                v,
                                format!("{field}.{f}: {:?} is not a time of day (expected HH:MM, UTC)", v.value),
                            )
                        })
                };
                let (start, end) = (time("from", from)?, time("to", to)?);
                if end <= start {
                    return Err(self.at(
                        to,
                        format!("{field}.to: must be after from (write a window that crosses midnight as two windows)"),
                    ));
                }
                Ok(FreezeWindow::Weekly {
                    days,
                    start,
                    end,
                    reason,
                })
            }
            _ => Err(self.at(
                raw,
                format!(
                    "{field}: expected either {{ start, end, reason }} (RFC 3339 times) or {{ days, from, to, reason }} (weekly, HH:MM UTC)"
                ),
            )),
        }
    }

    /// A promotion window; a recurring one must have an occurrence ending after `now`.
    pub(super) fn window(
        &self,
        field: &str,
        raw: &Spanned<RawWindow>,
        now: DateTime<Utc>,
    ) -> Result<PromotionWindow> {
        let w = &raw.value;
        // Each error points at the value it is about, else at the window.
        let fail = |e: WindowError| {
            let spot = match e.field {
                WindowField::Kind => w.kind.as_ref(),
                WindowField::Rrule => w.rrule.as_ref(),
                WindowField::Duration => w.duration.as_ref(),
                WindowField::Timezone => w.timezone.as_ref(),
                WindowField::Start => w.start.as_ref(),
                WindowField::End => w.end.as_ref(),
            };
            let message = format!("{field}.{e}");
            match spot {
                Some(v) => self.at(v, message),
                None => self.at(raw, message),
            }
        };
        let need = |f: WindowField, m: &str| {
            fail(WindowError {
                field: f,
                message: m.into(),
            })
        };
        let kind = match &w.kind {
            Some(k) => k.value.parse::<WindowKind>().map_err(|m| {
                fail(WindowError {
                    field: WindowField::Kind,
                    message: m,
                })
            })?,
            None => return Err(need(WindowField::Kind, "required: deny or allow")),
        };
        let tz = match &w.timezone {
            Some(t) => parse_timezone(&t.value).map_err(fail)?,
            None => chrono_tz::Tz::UTC,
        };
        let duration = w
            .duration
            .as_ref()
            .map(|d| parse_duration(&d.value))
            .transpose()
            .map_err(fail)?;
        let schedule = if let Some(rule) = &w.rrule {
            if w.end.is_some() {
                return Err(need(
                    WindowField::End,
                    "a recurring window lasts `duration`; end is for one-off windows",
                ));
            }
            let Some(duration) = duration else {
                return Err(need(
                    WindowField::Duration,
                    "a recurring window needs a duration, e.g. duration: 9h",
                ));
            };
            let start = match &w.start {
                None => None,
                Some(s) => Some(match parse_local(&s.value) {
                    Some(local) => local,
                    None => parse_time(&s.value, tz, WindowField::Start)
                        .map_err(fail)?
                        .with_timezone(&tz)
                        .naive_local(),
                }),
            };
            let recurrence = Recurrence::new(&rule.value, tz, start, duration).map_err(fail)?;
            match recurrence.next_occurrence(now) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(self.at(rule, format!("{field}.rrule: {:?} has no occurrence after {} (check UNTIL, COUNT and start)", rule.value, now.to_rfc3339()))),
                Err(e) => return Err(self.at(rule, format!("{field}.rrule: {e}"))),
            }
            WindowSchedule::recurring(recurrence)
        } else {
            let Some(start) = &w.start else {
                return Err(self.at(raw, format!("{field}: expected {{ kind, rrule, duration, timezone, reason }} (recurring) or {{ kind, start, end, timezone, reason }} (one-off)")));
            };
            let start = parse_time(&start.value, tz, WindowField::Start).map_err(fail)?;
            let end = match (&w.end, duration) {
                (Some(end), None) => parse_time(&end.value, tz, WindowField::End).map_err(fail)?,
                (None, Some(d)) => {
                    start + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
                }
                (Some(_), Some(_)) => {
                    return Err(need(
                        WindowField::Duration,
                        "give end or duration, not both",
                    ));
                }
                (None, None) => {
                    return Err(need(
                        WindowField::End,
                        "a one-off window needs end (or duration)",
                    ));
                }
            };
            WindowSchedule::once(start, end).map_err(fail)?
        };
        Ok(PromotionWindow::new(
            kind,
            schedule,
            w.reason.clone().unwrap_or_default(),
        ))
    }
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}
